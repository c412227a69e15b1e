"""Point the app's Celery at a broker for a test, and back to eager tasks after."""

from smscampaigns.celery import app as celery_app


def use_broker(url: str | None) -> None:
    """Send tasks to `url` (a Redis URL), or run them in place when it is None.

    The connection pools Celery made for an earlier broker, or for its
    default one, would keep sending there: they are dropped, the producer
    pool that control commands (ping) publish through included.
    """
    celery_app.conf.update(broker_url=url, task_always_eager=url is None)
    celery_app.close()
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
