"""What tokens cost at send time: the texts of one batch (BATCH_SPAN people,
tracked links included) made with lead tokens alone, and with program and
system tokens beside them. Run with
`DEBUG=true SECRET_KEY=x .venv/bin/python -m pytest benchmarks/test_tokens.py -q`;
pytest-benchmark prints the table. No target: the figures go to the README.
"""

import pytest

from marketing_activities.links import sms_texts_for_calls
from marketing_activities.models import FlowStep, Outcome
from marketing_activities.runner.planner import BATCH_SPAN
from tests.marketing_activities.factories import (
    ProgramTokenFactory,
    RunResultFactory,
    RunStepFactory,
    SmsMessageFactory,
)

pytestmark = pytest.mark.django_db

LEAD_TOKENS = (
    'Hi {{lead.first_name|default:"there"}} in {{lead.city}}: https://shop.example/?n={{lead.first_name}}'
)
ALL_TOKENS = (
    'Hi {{lead.first_name|default:"there"}}, {{my.offer}} until {{system.date}}: '
    "https://shop.example/?n={{lead.first_name}}&c={{my.code}}"
)


@pytest.mark.parametrize(
    "text", [LEAD_TOKENS, ALL_TOKENS], ids=["lead tokens", "lead, program and system tokens"]
)
def test_the_texts_of_a_batch(benchmark, text):
    message = SmsMessageFactory(text="x")
    ProgramTokenFactory(program=message.program, name="offer", value="20% off shoes")
    ProgramTokenFactory(program=message.program, name="code", value="SPRING 26")
    step = RunStepFactory(
        action=FlowStep.Action.SEND_SMS, sms_message=message, message_text=text, track_links=True
    )
    rows = [
        (row.pk, row.lead_id, row.phone)
        for row in RunResultFactory.create_batch(BATCH_SPAN, run_step=step, outcome=Outcome.SENDING)
    ]
    # The same rows again find their links (a retry): each round makes the same texts.
    benchmark.pedantic(lambda: sms_texts_for_calls(step=step, rows=rows), rounds=20, warmup_rounds=1)
