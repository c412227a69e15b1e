import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from smscampaigns.phones import normalize_phone


@pytest.mark.parametrize(
    "spelling", ["(555) 123-4567", "555.123.4567", "+15551234567", "1-555-123-4567", " 555 123 4567 "]
)
def test_the_spellings_of_rule_r3_are_one_number(spelling):
    assert normalize_phone(spelling, "US") == "+15551234567"


def test_default_region_comes_from_settings(settings):
    settings.PHONE_DEFAULT_REGION = "SE"
    assert normalize_phone("070-123 45 67") == "+46701234567"


def test_blank_number_is_blank():
    assert normalize_phone("  ") == ""


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12345", "wrong number of digits"),
        ("call me", "is not a phone number"),
        ("+1 800 555 0100", "toll-free"),
        ("+46 8 123 456 78", "landline"),
    ],
)
def test_invalid_numbers_say_why(raw, reason):
    with pytest.raises(ValidationError) as error:
        normalize_phone(raw, "US")
    assert reason in error.value.messages[0]
    assert raw.strip() in error.value.messages[0]


REGIONS = ["US", "CA", "GB", "DE", "SE", "NL", "IT", "FR"]


@st.composite
def mobile_numbers(draw):
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    # Vary the subscriber digits, keep the prefix that makes it a mobile number.
    keep = max(3, len(national) - 4)
    tail = draw(st.text(alphabet="0123456789", min_size=len(national) - keep, max_size=len(national) - keep))
    number = phonenumbers.parse(f"+{example.country_code}{national[:keep]}{tail}")
    return region, number


@given(mobile_numbers(), st.sampled_from(REGIONS))
def test_national_and_international_spellings_of_one_number_are_alike(region_and_number, other_region):
    region, number = region_and_number
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # The national spelling needs its own region; the international one reads
    # the same whatever the default region is.
    assert normalize_phone(national, region) == e164
    assert normalize_phone(international, other_region) == e164
    assert normalize_phone(e164, other_region) == e164
