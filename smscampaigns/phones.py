"""Mobile numbers in E.164 form.

Numbers are compared in E.164 form (R3), so "(555) 123-4567", "555.123.4567"
and "+15551234567" are one number. A number counts as a valid mobile number
when it has a possible length for its country and is not known to be a kind
of line that cannot take SMS (fixed line, toll free, premium rate...).
The fictional 555 numbers of the source documents are therefore accepted,
which a strict `is_valid_number` would refuse.
"""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

NOT_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: _("it is a landline number"),
    phonenumbers.PhoneNumberType.TOLL_FREE: _("it is a toll-free number"),
    phonenumbers.PhoneNumberType.PREMIUM_RATE: _("it is a premium-rate number"),
    phonenumbers.PhoneNumberType.SHARED_COST: _("it is a shared-cost number"),
    phonenumbers.PhoneNumberType.UAN: _("it is a company switchboard number"),
    phonenumbers.PhoneNumberType.VOICEMAIL: _("it is a voicemail number"),
}

E164_REGEX = r"^\+[1-9][0-9]{6,14}$"


def normalize_phone(raw: str, region: str | None = None) -> str:
    """Return `raw` in E.164 form, or "" when it is blank.

    Raises ValidationError saying why a non-blank number is not a valid
    mobile number.
    """
    text = (raw or "").strip()
    if not text:
        return ""
    region = (region or settings.PHONE_DEFAULT_REGION).upper()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("“%(value)s” is not a phone number."), code="invalid_phone", params={"value": text}
        ) from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(
            _("“%(value)s” has the wrong number of digits for a phone number of its country."),
            code="invalid_phone",
            params={"value": text},
        )
    # number_type is UNKNOWN exactly when is_valid_number is False; asking
    # once halves the cost (an import checks every row's number).
    reason = NOT_MOBILE_TYPES.get(phonenumbers.number_type(number))
    if reason:
        raise ValidationError(
            _("“%(value)s” cannot receive SMS: %(reason)s."),
            code="not_mobile",
            params={"value": text, "reason": reason},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone_or_blank(raw: str, region: str | None = None) -> str:
    """Like normalize_phone, but an invalid number becomes ""."""
    try:
        return normalize_phone(raw, region)
    except ValidationError:
        return ""
