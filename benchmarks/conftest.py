"""Fixtures of the interface benchmarks: a tree of 500 folders, 1,000 programs
and 10,000 campaigns, a marketer logged in, and a poster of Vibes callbacks.

Not collected by `make test` (testpaths is `tests`); run them with
`make bench-interface` (part of `make bench`).
"""

import base64

import pytest
from django.db import transaction

from marketing_activities.models import FlowStep, Folder, Program, SmartCampaign, SmsMessage
from smscampaigns.models import SmartList
from vibes.models import AcquisitionCampaign, VibesList

TOP_FOLDERS = 20
SUBFOLDERS = 24  # 20 + 20 × 24 = 500 folders
PROGRAMS_PER_FOLDER = 2  # 1,000 programs
CAMPAIGNS_PER_PROGRAM = 10  # 10,000 campaigns
MESSAGES_PER_PROGRAM = 2
RULES = {"logic": "all", "rules": [{"field": "country", "op": "is", "value": "US"}]}


def build_tree():
    lists = VibesList.objects.bulk_create(
        VibesList(vibes_id=str(100 + i), name=f"List {i}") for i in range(5)
    )
    AcquisitionCampaign.objects.bulk_create(
        AcquisitionCampaign(vibes_id=f"AC-{i}-{j}", name=f"Acquisition {i}.{j}", vibes_list=vl)
        for i, vl in enumerate(lists)
        for j in range(3)
    )
    tops = Folder.objects.bulk_create(Folder(name=f"Region {i:02d}") for i in range(TOP_FOLDERS))
    subs = Folder.objects.bulk_create(
        Folder(name=f"Team {j:02d}", parent=top) for top in tops for j in range(SUBFOLDERS)
    )
    folders = tops + subs
    programs = Program.objects.bulk_create(
        Program(name=f"Program {k}", folder=folder) for folder in folders for k in range(PROGRAMS_PER_FOLDER)
    )
    messages = SmsMessage.objects.bulk_create(
        SmsMessage(name=f"Message {k}", program=program, text="Hi {{lead.first_name}}, 20% off today.")
        for program in programs
        for k in range(MESSAGES_PER_PROGRAM)
    )
    smart_lists = SmartList.objects.bulk_create(
        SmartList(name=f"Smart list {n}", definition=RULES)
        for n in range(len(programs) * CAMPAIGNS_PER_PROGRAM)
    )
    lists_iter = iter(smart_lists)
    campaigns = SmartCampaign.objects.bulk_create(
        SmartCampaign(name=f"Campaign {k:02d}", program=program, smart_list=next(lists_iter))
        for program in programs
        for k in range(CAMPAIGNS_PER_PROGRAM)
    )
    message_of = {m.program_id: m for m in messages}
    FlowStep.objects.bulk_create(
        FlowStep(
            campaign=c,
            position=0,
            action="send_sms",
            sms_message=message_of[c.program_id],
            vibes_list=lists[0],
        )
        for c in campaigns
    )
    # One campaign with a long flow: ten steps of all three kinds.
    long_flow = campaigns[-1]
    acquisition = AcquisitionCampaign.objects.filter(vibes_list=lists[1]).first()
    FlowStep.objects.bulk_create(
        FlowStep(
            campaign=long_flow,
            position=p,
            action=("send_sms", "subscribe_vibes_list", "unsubscribe_vibes_list")[p % 3],
            sms_message=message_of[long_flow.program_id] if p % 3 == 0 else None,
            vibes_list=lists[1],
            acquisition_campaign=acquisition if p % 3 == 1 else None,
        )
        for p in range(1, 10)
    )
    return {
        "top": tops[0],
        "program": programs[0],
        "long_flow": long_flow,
        "folders": len(folders),
        "campaigns": len(campaigns),
    }


@pytest.fixture(scope="module")
def big_tree(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction that is rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        data = build_tree()
        yield data
        transaction.set_rollback(True)


@pytest.fixture
def marketer_client(client, django_user_model, settings):
    """A marketer of the Marketers group, not a superuser: the permission checks are timed too."""
    from tests.marketers import marketers_group

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_user("bench", password="pw-bench-123", is_staff=True)
    user.groups.add(marketers_group())
    client.force_login(user)
    return client


CALLBACK_AUTH = "Basic " + base64.b64encode(b"vibes:bench-callback-pw").decode()


@pytest.fixture
def post(client, settings):
    """`post(event_type, body, status=200)`: a callback posted as Vibes posts it
    (an empty event type sends none), its answer's status checked."""
    settings.VIBES_CALLBACK_USERNAME = "vibes"
    settings.VIBES_CALLBACK_PASSWORD = "bench-callback-pw"
    settings.VIBES_CALLBACK_ALLOWED_IPS = []

    def post(event_type, body, status=200):
        headers = {"Authorization": CALLBACK_AUTH}
        if event_type:
            headers["X-Vibes-Event-Type"] = event_type
        response = client.post("/vibes/callbacks/", body, content_type="application/json", headers=headers)
        assert response.status_code == status, response.content
        return response

    return post
