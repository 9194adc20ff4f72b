"""schemathesis hooks of scripts/api-contract: one check of our own beside schemathesis' own.

`refused_unauthenticated`: in the runs without credentials (API_CONTRACT_RUN=no-key, the API-key
routes with no key; API_CONTRACT_RUN=unsigned, the signed routes unsigned), nothing may be
accepted: every answer of an API-key route is 401, every POST to a platform or to Trustpilot's
webhook is 401 (404 for a provider name that is not a platform). A conforming 2xx there would
pass the document's checks and still be a hole.
"""

import os

import schemathesis

PROVIDERS = {
    "typeform", "facebook", "google-ads", "hubspot", "linkedin", "tally", "webflow",
    "calendly", "unbounce", "jotform",
}


@schemathesis.check
def refused_unauthenticated(ctx, response, case):
    run = os.environ.get("API_CONTRACT_RUN", "")
    if case.method.upper() != case.operation.method.upper():
        # A method the document does not have (schemathesis tries some): API Gateway's 404.
        return
    status = response.status_code
    if run == "no-key":
        if status != 401:
            raise AssertionError(f"{case.method} {case.path} without a key answered {status}, not 401")
    elif run == "unsigned" and case.method.upper() == "POST":
        if case.path == "/webhooks/{provider}":
            provider = (case.path_parameters or {}).get("provider")
            if provider not in PROVIDERS:
                if 200 <= status < 300:
                    raise AssertionError(f"POST /webhooks/{provider!r} unsigned answered {status}")
                return
        if status != 401:
            raise AssertionError(f"{case.method} {case.path} unsigned answered {status}, not 401")
