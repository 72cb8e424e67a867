"""Phone numbers for outbound calling: the one place that knows numbering plans.

Contact lists arrive as people type numbers (``(555) 010-0001``, ``+44 20 7946 0000``,
``0044 20...``); the dialer, the do-not-call list and the calling windows all need one
form, E.164 (``+15550100001``), and the contact's time zone. Google's libphonenumber
(``phonenumbers``) holds every country's plan, so nothing here guesses from digit counts.

* :func:`to_e164` -- a typed number and the list's default region -> E.164, or
  :class:`PhoneNumberError` saying why not (not a number, impossible length, unknown
  region);
* :func:`time_zones` -- the IANA zones a number may ring in (one for most numbers, several
  for a mobile or a country spanning zones, none when unknown);
* :func:`area_code` -- the national destination code, for local-presence caller IDs.

Pure: no I/O.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, timezone

__all__ = ["PhoneNumberError", "area_code", "is_e164", "is_region", "time_zones", "to_e164"]

_UNKNOWN_ZONE = "Etc/Unknown"
_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "no number of that country has this length",
}


class PhoneNumberError(ValueError):
    """A text that is not a callable phone number; the message says why."""


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    raw = text.strip()
    if not raw:
        raise PhoneNumberError("empty phone number")
    if len(raw) > 40:
        raise PhoneNumberError(f"not a phone number: {raw[:40]!r}... (too long)")
    if any(ch.isalpha() for ch in raw):
        # libphonenumber reads 1-800-FLOWERS as digits; a contact list's letters are a
        # data error (a name in the number column), not a vanity number.
        raise PhoneNumberError(f"not a phone number: {raw!r} (letters)")
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            hint = (f"unknown country code in {raw!r}" if raw.startswith(("+", "00"))
                    else f"{raw!r} has no country code and no default region is set")
            raise PhoneNumberError(hint) from None
        raise PhoneNumberError(f"not a phone number: {raw!r}") from None
    return number


def to_e164(text: str, region: str | None = None) -> str:
    """``text`` as E.164 (``+15550100001``); ``region`` (ISO 3166 ``US``, ``GB``) is the
    country of a number written without its country code.

    Only the *possible* check is made (right length for its country), not full validity:
    test ranges such as 555-01xx are possible but not "valid", and a dialer must still
    be able to call them on a test carrier.
    """
    number = _parse(text, region.upper() if region else None)
    result = phonenumbers.is_possible_number_with_reason(number)
    if result not in (phonenumbers.ValidationResult.IS_POSSIBLE,
                      phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        reason = _REASONS.get(result, "not a possible number")
        raise PhoneNumberError(f"not a possible phone number: {text.strip()!r} ({reason})")
    if result == phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        raise PhoneNumberError(f"{text.strip()!r} is a local number: write it with its "
                               "area code")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_region(code: str) -> bool:
    """Whether ``code`` is a region libphonenumber has a numbering plan for (``US``, ``GB``)."""
    return code in phonenumbers.SUPPORTED_REGIONS


def is_e164(text: str) -> bool:
    """Whether ``text`` is already an E.164 number as :func:`to_e164` writes it."""
    try:
        return to_e164(text) == text
    except PhoneNumberError:
        return False


def time_zones(e164: str) -> tuple[str, ...]:
    """IANA zones the number may be in, sorted; ``()`` when libphonenumber does not know.

    A fixed line usually has one; a country spanning zones (a US mobile number with an
    area code shared across a zone border) may have several: a calling window must hold
    in every one of them.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return ()
    zones = timezone.time_zones_for_number(number)
    return tuple(sorted(z for z in zones if z != _UNKNOWN_ZONE))


def area_code(e164: str) -> str | None:
    """The country code and national destination code (``+1555`` of ``+15550100001``),
    the key of a local-presence caller ID pool; ``None`` when the number has none."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    national = phonenumbers.national_significant_number(number)
    length = phonenumbers.length_of_national_destination_code(number)
    if length <= 0:
        return None
    return f"+{number.country_code}{national[:length]}"
