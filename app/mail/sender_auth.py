"""Whether the From address can be trusted, from the evidence the message arrived with.

Mandrill reports whether the message's DKIM signature verified (`msg.dkim.valid`) and the SPF
result for the envelope sender (`msg.spf.result`); neither says for which domain, so the
signing domains come from the DKIM-Signature headers (`d=`) and the envelope sender from
Return-Path. Evidence counts for the From address only when its domain aligns (equal, or
`d=` is a parent domain of From's, as DMARC's relaxed alignment has it).

`Authentication-Results` headers are parsed with `authres` and their DMARC verdict kept, but
they are only a fallback: any sender can write such a header into a message, so the one the
nearest receiving hop added (the topmost) is read, and only when Mandrill gave no evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import authres  # type: ignore[import-untyped]

from app.mail.parsed import ParsedEmail
from app.mail.text import bounded

_MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class SenderAuthentication:
    authenticated: bool | None
    reason: str
    dmarc: str | None = None  # the topmost Authentication-Results' dmarc= result
    results: list[dict[str, Any]] = field(default_factory=list)


def authenticate_sender(parsed: ParsedEmail) -> SenderAuthentication:
    results = parse_authentication_results(parsed.authentication_results)
    dmarc = next(
        (r["result"] for r in (results[0]["results"] if results else []) if r["method"] == "dmarc"),
        None,
    )
    verdict, reason = _verdict(parsed, dmarc)
    return SenderAuthentication(
        authenticated=verdict,
        reason=bounded(reason, _MAX_REASON_CHARS),
        dmarc=dmarc,
        results=results,
    )


def aligned(domain: str | None, from_domain: str) -> bool:
    """Whether `domain` is From's domain or a parent of it (never a bare public suffix)."""
    if not domain:
        return False
    domain = domain.lower().rstrip(".")
    return domain == from_domain or ("." in domain and from_domain.endswith("." + domain))


def _domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    domain = address.rpartition("@")[2].strip().strip("<>").rstrip(".").lower()
    return domain or None


def _verdict(parsed: ParsedEmail, dmarc: str | None) -> tuple[bool | None, str]:
    from_domain = _domain(parsed.from_address)
    if from_domain is None:
        return None, "no From address to check"
    signers = parsed.dkim_domains
    aligned_signer = next((d for d in signers if aligned(d, from_domain)), None)
    if parsed.dkim_valid and aligned_signer:
        return True, f"dkim: valid signature by {aligned_signer}, aligned with {from_domain}"
    spf = (parsed.spf_result or "").strip().lower()
    envelope = _domain(parsed.headers.get("Return-Path"))
    if spf == "pass" and aligned(envelope, from_domain):
        return True, f"spf: pass for envelope sender domain {envelope}, aligned with {from_domain}"
    if parsed.dkim_valid and signers:
        others = ", ".join(sorted(set(signers)))
        return False, f"dkim: valid signature only by {others}, not {from_domain}"
    if spf in ("fail", "softfail"):
        return False, f"spf: {spf} for the envelope sender"
    if parsed.dkim_signed and parsed.dkim_valid is False:
        return False, "dkim: the signature did not verify"
    if dmarc in ("pass", "fail"):
        return (
            dmarc == "pass",
            f"dmarc: {dmarc} in Authentication-Results (written by a receiving server)",
        )
    return None, "no authentication evidence for the From domain"


def parse_authentication_results(values: list[str]) -> list[dict[str, Any]]:
    """Each header as `{authserv_id, results: [{method, result, properties}]}`; a header
    authres cannot read is skipped."""
    parsed: list[dict[str, Any]] = []
    for value in values:
        try:
            header = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + value)
        except Exception:  # noqa: BLE001, S112 (authres raises its own and plain errors)
            continue
        parsed.append(
            {
                "authserv_id": str(header.authserv_id),
                "results": [
                    {
                        "method": str(result.method).lower(),
                        "result": str(result.result).lower(),
                        "properties": {
                            f"{p.type}.{p.name}": str(p.value) for p in result.properties
                        },
                    }
                    for result in header.results
                ],
            }
        )
    return parsed
