"""Tracked links: each web address in an SMS goes out, per person and per send,
as a short link of this installation (`/l/<code>`) that records the click and
leads on to the address.

The codes come from `secrets` and say nothing about the person: ten letters
and digits (59 bits), so guessing one takes about 10^17 tries per link made.
A run step's links are made a batch at a time, as its rows are about to be
called, with one INSERT and one SELECT whatever the batch size; a row's links
are made once (one per address and row, enforced by the database), so a
resumed or retried send finds the same links again.
"""

import re
import secrets
import string
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from smscampaigns.models import Lead

from . import sms_text
from .models import LinkClick, ProgramToken, RunStep, SentSms, TrackedLink
from .reporting.rollups import sms_rollups_following
from .sms_triggers import link_click_activity

CODE_LENGTH = 10
# Letters and digits: one GSM-7 septet each, and nothing a URL must escape.
CODE_ALPHABET = string.ascii_letters + string.digits
_CODE = re.compile(rf"[A-Za-z0-9]{{{CODE_LENGTH}}}")
# What the counter and the preview show for a short link: as long as a real one.
SAMPLE_CODE = "x" * CODE_LENGTH
# Codes are random, so two rows may draw the same one (rarely, at a billion
# links): those rows draw again.
_MAX_DRAWS = 5

# Link previews (messaging apps, social sites) and crawlers fetch a link
# without anyone clicking it. Their clicks are kept, marked, and not counted.
_ROBOTS = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|preview|facebookexternalhit|facebot|whatsapp|telegram|skypeuri"
    r"|embedly|vkshare|pinterest|quora link|outbrain|bitlybot|mastodon|curl/|wget/|python-requests"
    r"|go-http-client|headless",
    re.IGNORECASE,
)


# Random bytes below 248 (4 × 62) map evenly onto the alphabet; the rest are dropped.
_BYTE_TO_LETTER = bytes(ord(CODE_ALPHABET[byte % 62]) for byte in range(248)) + bytes(8)
_DROPPED_BYTES = bytes(range(248, 256))


def new_codes(count: int) -> list[str]:
    """`count` fresh codes, from `secrets`, in one go (a batch draws hundreds)."""
    letters = ""
    while len(letters) < count * CODE_LENGTH:
        raw = secrets.token_bytes((count * CODE_LENGTH - len(letters)) * 17 // 16 + 8)
        letters += raw.translate(_BYTE_TO_LETTER, _DROPPED_BYTES).decode("ascii")
    return [letters[start : start + CODE_LENGTH] for start in range(0, count * CODE_LENGTH, CODE_LENGTH)]


def short_url(code: str) -> str:
    return f"{settings.SHORT_LINK_BASE_URL}/l/{code}"


def text_as_counted(text: str, *, track_links: bool) -> str:
    """The text as the segment counter counts it: with tracked links, each web
    address as long as the short link that replaces it."""
    if not track_links:
        return text
    sample = short_url(SAMPLE_CODE)
    return sms_text.replace_links(text, lambda position, address: sample)


def _address_for(address: str, lead, **tokens) -> str:
    # A token's value inside a web address is percent-encoded: a name with a
    # space or an & must not break the address.
    return sms_text.render(address, lead, encode=lambda value: quote(value, safe=""), **tokens)


def step_tokens(step: RunStep) -> dict:
    """What a step's texts fill in besides the lead's values: its message's
    program tokens as they are now (one query), and the moment of sending (system tokens)."""
    program_tokens = ProgramToken.objects.filter(program__sms_messages=step.sms_message_id)
    return {"program_tokens": dict(program_tokens.values_list("name", "value")), "at": timezone.now()}


@transaction.atomic
def sms_texts_for_calls(*, step: RunStep, rows: list[tuple[int, int, str]]) -> dict[int, str]:
    """{result id: the text its SMS carries} for rows (result id, lead id,
    number) about to be sent: tokens filled in and, unless the message opted
    out, each web address replaced by the row's short link. The texts are
    stored with their rows (SentSms) before any call, so a row shows what was sent."""
    leads = Lead.objects.in_bulk([lead_id for _result_id, lead_id, _phone in rows])
    tokens = step_tokens(step) if sms_text.has_shared_tokens(step.message_text) else {}
    spans = sms_text.link_spans(step.message_text) if step.track_links else []
    codes = {}
    if spans:
        addresses = {
            (result_id, position): _address_for(step.message_text[start:end], leads[lead_id], **tokens)
            for result_id, lead_id, _phone in rows
            for position, (start, end) in enumerate(spans)
        }
        codes = _links_for_rows(step, {result_id: lead_id for result_id, lead_id, _ in rows}, addresses)
    texts = {}
    for result_id, lead_id, _phone in rows:
        text = step.message_text
        if spans:
            text = sms_text.replace_links(
                text,
                lambda position, address, result_id=result_id: short_url(codes[result_id, position]),
                spans=spans,
            )
        texts[result_id] = sms_text.render(text, leads[lead_id], **tokens)
    # Hundreds of small rows: plain executemany, not model instances. A row
    # sent again (an uncertain call retried) may carry new values of its tokens.
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {_table(SentSms)} (result_id, run_step_id, text, clicks) VALUES (%s, %s, %s, 0) "
            f"ON CONFLICT (result_id) DO UPDATE SET text = excluded.text",
            [(result_id, step.pk, text) for result_id, text in texts.items()],
        )
    return texts


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _links_for_rows(step: RunStep, lead_of: dict[int, int], addresses: dict) -> dict[tuple[int, int], str]:
    """{(result id, position): code} for every address wanted, made now or found again."""
    codes = {}
    missing = dict(addresses)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for _draw in range(_MAX_DRAWS):
        # Rows that already have their links (a retry) are ignored by the
        # database, as are the rare codes another row holds already.
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_table(TrackedLink)} (code, run_step_id, result_id, lead_id, position, url, "
                f"created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [
                    (code, step.pk, result_id, lead_of[result_id], position, address, now)
                    for code, ((result_id, position), address) in zip(
                        new_codes(len(missing)), missing.items(), strict=True
                    )
                ],
            )
        found = TrackedLink.objects.filter(result_id__in={result_id for result_id, _ in missing}).values_list(
            "result_id", "position", "code"
        )
        for result_id, position, code in found:
            codes[result_id, position] = code
        missing = {key: address for key, address in missing.items() if key not in codes}
        if not missing:
            return codes
    raise RuntimeError(f"could not draw unique link codes for {len(missing)} links")


def link_by_code(code: str) -> TrackedLink | None:
    """The link a short address names; None for a code that is malformed or unknown."""
    if not _CODE.fullmatch(code or ""):
        return None
    # With its step's SMS message: a click's activity names it (no second query).
    return TrackedLink.objects.select_related("run_step").filter(code=code).first()


def is_robot(user_agent: str) -> bool:
    return not user_agent or bool(_ROBOTS.search(user_agent))


@transaction.atomic
def link_click_record(
    *, link: TrackedLink, user_agent: str = "", preview: bool = False, when=None
) -> LinkClick:
    """Record a click on a tracked link. Every click enters the product here.

    `preview`: the request cannot be a person's click (a HEAD request). A
    request without a browser, or from a known link preview or robot, is kept
    but marked, and the counts of people who clicked leave it out.
    """
    when = when or timezone.now()
    by_robot = preview or is_robot(user_agent)
    # The SMS's figures count a person's first click (reporting/rollups.py).
    with sms_rollups_following([] if by_robot else [link.result_id], lock=True):
        click = LinkClick.objects.create(
            link=link,
            lead_id=link.lead_id,
            run_step_id=link.run_step_id,
            result_id=link.result_id,
            clicked_at=when,
            user_agent=user_agent[:400],
            by_robot=by_robot,
        )
    if not click.by_robot:
        # The row's SMS shows its clicks without reading them (a page of the Results, a lead's activity).
        SentSms.objects.filter(result_id=link.result_id).update(
            clicks=F("clicks") + 1, first_clicked_at=Coalesce("first_clicked_at", Value(when))
        )
        # A person's click is an activity: "Clicks Link in SMS Message" fires on it.
        link_click_activity(click=click, sms_message_id=link.run_step.sms_message_id, url=link.url)
    return click


# --- Reading the clicks ------------------------------------------------------------


def clicked_counts(step_ids) -> dict[int, int]:
    """{step id: people who clicked a link} for these steps, from the clicks' index alone."""
    rows = (
        LinkClick.objects.filter(run_step_id__in=list(step_ids), by_robot=False)
        .values("run_step_id")
        .annotate(people=Count("result_id", distinct=True))
        .order_by()
    )
    return {row["run_step_id"]: row["people"] for row in rows}


def clicked_result_ids(step_ids):
    """A subquery of the result rows of these steps whose person clicked a link."""
    return LinkClick.objects.filter(run_step_id__in=list(step_ids), by_robot=False).values("result_id")
