"""Tracked links: web addresses in an SMS go out as short links, per person and send."""

import re

import pytest

from marketing_activities.links import CODE_LENGTH, sms_texts_for_calls, text_as_counted
from marketing_activities.models import CampaignRun, FlowStep, Outcome, SentSms, SmsMessage, TrackedLink
from marketing_activities.runner import run_execute, run_resume, run_retry_uncertain
from marketing_activities.runner.planner import BATCH_SPAN
from marketing_activities.sms_text import count_segments, link_spans
from smscampaigns.settings import site_address
from tests.marketing_activities.campaigns import execute, make_campaign, subscribed
from tests.marketing_activities.factories import RunResultFactory, RunStepFactory
from tests.vibes.simulated import make_client

pytestmark = pytest.mark.django_db

SHORT_BASE = "https://go.example.com"
SHORT_LINK = re.compile(re.escape(SHORT_BASE) + r"/l/([A-Za-z0-9]+)")
SALE = (
    "Hi {{lead.first_name}}: https://shop.example.com/sale?who={{lead.first_name}}. Or https://example.org/b"
)


@pytest.fixture(autouse=True)
def short_base(settings):
    settings.SHORT_LINK_BASE_URL = SHORT_BASE


def campaign_texting(vibes_list, text, *, dont_track_links=False):
    campaign = make_campaign(("send", vibes_list))
    message = campaign.flow_steps.get().sms_message
    message.text, message.dont_track_links = text, dont_track_links
    message.save()
    return campaign


def sent_texts(simulator) -> dict[str, str]:
    return {message["to"]: message["text"] for message in simulator.messages()}


# --- Finding the web addresses ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "addresses"),
    [
        ("See https://example.com/a.", ["https://example.com/a"]),
        ("(https://example.com/a) and http://x.example/b?c=1, ok!", ["https://example.com/a", "http://x.example/b?c=1"]),
        ("https://en.example.org/wiki/Foo_(bar) now", ["https://en.example.org/wiki/Foo_(bar)"]),
        (
            "Go: https://shop.example/?e={{lead.email}}&n={{ lead.first_name }} today",
            ["https://shop.example/?e={{lead.email}}&n={{ lead.first_name }}"],
        ),
        ("No link: www.example.com, https:// or example.com", []),
    ],
)  # fmt: skip
def test_web_addresses_are_found_without_the_punctuation_that_ends_a_sentence(text, addresses):
    assert [text[start:end] for start, end in link_spans(text)] == addresses


# --- Sending --------------------------------------------------------------------------


def test_each_person_gets_each_address_as_a_short_link_of_their_own(news, vibes_simulator):
    anna = subscribed(news, first_name="Anna Lu", mobile_phone="+15551240001")
    bert = subscribed(news, first_name="Bert", mobile_phone="+15551240002")
    run = execute(campaign_texting(news, SALE), vibes_simulator)
    assert run.status == CampaignRun.Status.COMPLETED
    texts = sent_texts(vibes_simulator)
    codes = {phone: SHORT_LINK.findall(text) for phone, text in texts.items()}
    assert all(len(found) == 2 for found in codes.values())
    assert len({code for found in codes.values() for code in found}) == 4
    assert texts["+15551240001"] == (
        f"Hi Anna Lu: {SHORT_BASE}/l/{codes['+15551240001'][0]}. Or {SHORT_BASE}/l/{codes['+15551240001'][1]}"
    )
    links = {(link.lead_id, link.position): link for link in TrackedLink.objects.all()}
    # A token's value in an address is percent-encoded; the code itself says nothing of the person.
    assert links[anna.pk, 0].url == "https://shop.example.com/sale?who=Anna%20Lu"
    assert links[bert.pk, 0].url == "https://shop.example.com/sale?who=Bert"
    assert links[bert.pk, 1].url == "https://example.org/b"
    assert links[anna.pk, 0].code == codes["+15551240001"][0]
    assert all(re.fullmatch(rf"[A-Za-z0-9]{{{CODE_LENGTH}}}", link.code) for link in links.values())


def test_what_was_sent_is_what_the_persons_row_shows(news, vibes_simulator):
    anna = subscribed(news, first_name="Anna", mobile_phone="+15551240011")
    run = execute(campaign_texting(news, SALE), vibes_simulator)
    row = run.steps.get().results().get(lead=anna)
    assert row.outcome == Outcome.SENT
    assert SentSms.objects.get(result=row).text == sent_texts(vibes_simulator)["+15551240011"]


def test_a_message_that_does_not_track_links_sends_its_addresses_as_typed(news, vibes_simulator):
    subscribed(news, first_name="Anna", mobile_phone="+15551240021")
    execute(campaign_texting(news, SALE, dont_track_links=True), vibes_simulator)
    assert sent_texts(vibes_simulator)["+15551240021"] == (
        "Hi Anna: https://shop.example.com/sale?who=Anna. Or https://example.org/b"
    )
    assert not TrackedLink.objects.exists()


def test_the_choice_of_tracking_is_the_messages_as_the_run_started(news, vibes_simulator):
    subscribed(news, first_name="Anna", mobile_phone="+15551240031")
    campaign = campaign_texting(news, SALE)
    run = execute(campaign, vibes_simulator, password="wrong")  # stops before anything is sent
    assert run.status == CampaignRun.Status.FAILED
    SmsMessage.objects.update(dont_track_links=True)
    run_resume(run=run)
    run_execute(run=run, client=make_client(vibes_simulator.url))
    assert SHORT_LINK.search(sent_texts(vibes_simulator)["+15551240031"])


def test_a_resumed_run_sends_the_links_it_made_before_and_makes_no_second_one(news, vibes_simulator):
    for index in range(3):
        subscribed(news, first_name=f"P{index}", mobile_phone=f"+1555124004{index}")
    # Vibes refuses the credentials: the rows were about to be sent, their links made.
    run = execute(campaign_texting(news, SALE), vibes_simulator, password="wrong")
    assert run.status == CampaignRun.Status.FAILED
    made = dict(TrackedLink.objects.values_list("code", "url"))
    assert len(made) == 6
    run_resume(run=run)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.steps.get().counts == {"sent": 3}
    assert dict(TrackedLink.objects.values_list("code", "url")) == made
    sent_codes = {code for text in sent_texts(vibes_simulator).values() for code in SHORT_LINK.findall(text)}
    assert sent_codes == set(made)


def test_a_retried_uncertain_send_keeps_its_links(news, vibes_simulator):
    for index in range(30):
        subscribed(news, first_name=f"P{index}", mobile_phone=f"+1555124{index + 100:04d}")
    vibes_simulator.set_faults(error_rate=0.3)
    run = execute(campaign_texting(news, SALE), vibes_simulator)
    step = run.steps.get()
    uncertain = list(step.results().filter(outcome=Outcome.UNCERTAIN).values_list("pk", flat=True))
    assert uncertain
    before = dict(TrackedLink.objects.filter(result_id__in=uncertain).values_list("code", "result_id"))
    vibes_simulator.set_faults(error_rate=0)
    run_retry_uncertain(run=run)
    run = run_execute(run=run, client=make_client(vibes_simulator.url))
    assert run.steps.get().counts == {"sent": 30}
    assert TrackedLink.objects.count() == 60
    assert (
        dict(TrackedLink.objects.filter(result_id__in=uncertain).values_list("code", "result_id")) == before
    )
    resent = {code for text in sent_texts(vibes_simulator).values() for code in SHORT_LINK.findall(text)}
    assert set(before) <= resent


def _queued_rows(count):
    step = RunStepFactory(action=FlowStep.Action.SEND_SMS, message_text=SALE, track_links=True)
    rows = RunResultFactory.create_batch(count, run_step=step, outcome=Outcome.SENDING)
    return step, [(row.pk, row.lead_id, row.phone) for row in rows]


@pytest.mark.parametrize("people", [5, BATCH_SPAN])
def test_making_a_batchs_links_takes_the_same_queries_whatever_its_size(people, django_assert_num_queries):
    """A batch holds at most BATCH_SPAN rows: the links of the largest are made as those of the smallest."""
    step, rows = _queued_rows(people)
    # The people, the links (one INSERT, one SELECT), the texts (one INSERT), and the savepoint's two.
    with django_assert_num_queries(6):
        texts = sms_texts_for_calls(step=step, rows=rows)
    assert len(texts) == people
    assert TrackedLink.objects.count() == 2 * people


def test_the_same_rows_twice_get_the_same_texts_and_no_new_links():
    step, rows = _queued_rows(20)
    first = sms_texts_for_calls(step=step, rows=rows)
    again = sms_texts_for_calls(step=step, rows=rows)
    assert again == first
    assert TrackedLink.objects.count() == 40
    assert SentSms.objects.count() == 20


# --- Counting ------------------------------------------------------------------------


def test_the_segment_count_counts_the_short_link_not_the_address():
    address = "https://shop.example.com/" + "a" * 150
    text = f"Sale: {address}"
    counted = text_as_counted(text, track_links=True)
    assert counted == f"Sale: {SHORT_BASE}/l/{'x' * CODE_LENGTH}"
    assert count_segments(counted).segments == 1
    assert count_segments(text_as_counted(text, track_links=False)).segments == 2


def test_the_short_link_is_under_the_configured_base(settings):
    settings.SHORT_LINK_BASE_URL = "http://s.example"
    assert text_as_counted("https://a.example/x", track_links=True) == "http://s.example/l/xxxxxxxxxx"


def test_the_short_links_default_to_the_sites_public_address_never_its_credentials():
    assert (
        site_address("https://vibes:s3cret@sms.example.com/vibes/callbacks/", []) == "https://sms.example.com"
    )
    assert site_address("http://[::1]:8000/vibes/callbacks/", []) == "http://[::1]:8000"
    assert site_address("", ["https://app.example.org"]) == "https://app.example.org"
    assert site_address("", []) == "http://127.0.0.1:8000"
