"""What the Vibes client returns: small frozen dataclasses, never raw dicts."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SubscriptionListInfo:
    id: str
    name: str


@dataclass(frozen=True)
class AcquisitionCampaignInfo:
    acquisition_id: str
    name: str
    status: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParticipantResult:
    """The answer to adding a participant to an acquisition campaign.

    `status` is "pending" (Vibes texted a confirmation request) or
    "subscribed". `already_subscribed` is True for Vibes' 409, a success in
    disguise, which carries no person key.
    """

    status: str
    person_key: str
    already_subscribed: bool = False


@dataclass(frozen=True)
class PersonInfo:
    person_key: str
    external_person_id: str
    mdn: str


@dataclass(frozen=True)
class SubscriberInfo:
    """A subscriber of a list, as the contract's person resource describes them.

    `custom_fields` is what the brand stored on the person in Vibes (names
    and values as Vibes holds them), e.g. {"first_name": "Ana"}.
    """

    person_key: str
    external_person_id: str
    mdn: str
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubscriptionInfo:
    """A person's subscription to one list; subscribed iff `opt_out_date` is empty."""

    list_id: str
    opt_in_date: str = ""
    opt_out_date: str = ""
    opt_out_reason: str = ""

    @property
    def subscribed(self) -> bool:
        return not self.opt_out_date


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    status: str
