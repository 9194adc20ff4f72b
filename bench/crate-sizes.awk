# Bytes per crate from `nm -S -t d -C` of an unstripped binary (bench/size.sh).
#
# A symbol counts for the first crate its demangled name mentions that is not core, alloc or
# std: generic standard-library code instantiated for a crate's types
# (`core::ptr::drop_in_place<h2::proto::...>`, `<alloc::vec::Vec<rustls::...> as ...>`) is what
# that crate costs. Symbols without a Rust path are C: aws-lc's are prefixed `aws_lc_`; the
# rest (libc start files, C constant tables) count as "[C and unnamed]". Bytes outside any
# symbol (unwind tables, relocations, string literals merged by the linker) are the section
# sizes' remainder, printed by bench/size.sh.
#
# Output: total, text, data, crate (tab-separated), one line per crate, unsorted.
{
  size = $2 + 0
  type = $3
  name = $0
  sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
  crate = ""
  s = " " name
  while (match(s, /[^A-Za-z0-9_:][A-Za-z_][A-Za-z0-9_]*::/)) {
    c = substr(s, RSTART + 1, RLENGTH - 3)
    s = substr(s, RSTART + RLENGTH)
    if (c == "core" || c == "alloc" || c == "std" || c == "impl") continue
    crate = c
    break
  }
  if (crate == "") {
    if (name ~ /::/) crate = "std"
    else if (name ~ /^aws_lc_/) crate = "aws_lc_sys (C)"
    else crate = "[C and unnamed]"
  }
  total[crate] += size
  if (type ~ /[tTwW]/) text[crate] += size
  else data[crate] += size
}
END {
  for (c in total) printf "%d\t%d\t%d\t%s\n", total[c], text[c], data[c], c
}
