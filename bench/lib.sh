# Shared by the bench scripts (sourced).

# export_absolute VAR...: each set VAR holding an output path becomes an absolute path (its
# directory created), because cargo runs a bench from its package's directory.
export_absolute() {
  local var path
  for var in "$@"; do
    path=${!var:-}
    [ -n "$path" ] || continue
    mkdir -p "$(dirname "$path")"
    printf -v "$var" '%s' "$(realpath -m "$path")"
    export "${var?}"
  done
}
