"""The queue pages: admins only, the secret never rendered, the model's per-type errors shown
by field, purge only when confirmed, the dead-letter browser, table links and the outbox
monitor's "retry now". Database queues stand in for the engines here (they run on both
suites); a broker that does not answer is an AMQP port nobody listens on."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from queues import services
from queues.backends import get_backend
from queues.messages import OutgoingMessage
from queues.models import (
    DatabaseMessage,
    MessageState,
    OutboxMessage,
    OutboxState,
    Queue,
    QueueLink,
    QueueType,
)
from tests.backoffice.page_text import page_text, summary
from tests.zstorage.builders import make_field, make_table
from zstorage import records

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pa55word-never-shown"
DOWN_AMQP = "amqp://127.0.0.1:1/"
HTMX = {"HTTP_HX_REQUEST": "true"}
QUEUE_TYPES = list(QueueType.values)


def logged_in(client: Client, name: str = "root", admin: bool = True) -> User:
    user = User.objects.create_user(name)
    group = "admins" if admin else "business users"
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


@pytest.fixture
def admin(client: Client) -> Client:
    logged_in(client)
    return client


@pytest.fixture
def jobs() -> Queue:
    return services.create_queue(name="jobs", type="database", visibility_timeout=30)


def publish(queue: Queue, count: int) -> list[OutgoingMessage]:
    batch = [OutgoingMessage.new({"handler": "send_email", "n": n}) for n in range(count)]
    services.publish(queue, batch)
    return batch


def dead_letter(queue: Queue, count: int) -> list[str]:
    """Publish ``count`` messages and dead-letter them as a worker would."""
    publish(queue, count)
    with get_backend(queue) as backend:
        deliveries = backend.fetch(max_messages=count, wait_seconds=0)
        for delivery in deliveries:
            backend.dead_letter(delivery, f"SMTP 550 for message {delivery.message_id}")
    return [d.message_id for d in deliveries]


def pages(queue: Queue, link: QueueLink | None = None, key: str = "missing") -> list[str]:
    base = f"/queues/{queue.pk}"
    urls = [
        "/queues/",
        "/queues/new",
        f"{base}/",
        f"{base}/stats",
        f"{base}/stats?view=card",
        f"{base}/stats?view=dead",
        f"{base}/purge",
        f"{base}/dead-letters/",
        f"{base}/dead-letters/{key}/",
        f"{base}/links/",
        "/outbox/",
    ]
    if link is not None:
        urls.append(f"{base}/links/{link.pk}/")
    return urls


def posts(queue: Queue, link: QueueLink, key: str) -> list[tuple[str, dict[str, Any]]]:
    base = f"/queues/{queue.pk}"
    return [
        ("/queues/new", {"name": "sneaky", "type": "database", "visibility_timeout": 30}),
        (f"{base}/", {"name": "renamed", "type": "database", "visibility_timeout": 30}),
        (f"{base}/check", {}),
        (f"{base}/provision", {}),
        (f"{base}/test-message", {"handler": "log", "payload": "{}"}),
        (f"{base}/toggle", {}),
        (f"{base}/purge", {"confirm": "yes"}),
        (f"{base}/dead-letters/redrive", {"all": "yes"}),
        (f"{base}/dead-letters/{key}/delete", {}),
        (f"{base}/dead-letters/{key}/edit", {"handler": "log", "body": "{}"}),
        (f"{base}/dead-letters/redrive", {"change": "handler", "handler": "log", "key": [key]}),
        (f"{base}/links/", {"table": "orders", "on_create": "on", "handler": "x"}),
        (f"{base}/links/{link.pk}/delete", {}),
        (f"{base}/links/preview", {"table": "orders"}),
        ("/outbox/retry", {"queue": queue.pk}),
    ]


@pytest.fixture
def orders() -> Any:
    table = make_table("orders", "Orders")
    make_field(table, "number", required=True)
    make_field(table, "status", "choice", options={"choices": ["new", "paid"]})
    records.create_record(table, {"number": "SO-1", "status": "new"})
    records.create_record(table, {"number": "SO-2", "status": "paid"})
    records.create_record(table, {"number": "SO-3", "status": "paid"})
    return table


# -- who may open them ---------------------------------------------------------------------------


def test_every_queue_page_needs_login(client: Client, jobs: Queue):
    for url in pages(jobs):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


def test_business_users_get_403_on_every_queue_page(client: Client, jobs: Queue, orders: Any):
    link = QueueLink.objects.create(table=orders, queue=jobs, handler="log")
    (key,) = dead_letter(jobs, 1)
    OutboxMessage.objects.create(queue=jobs, body={"handler": "x"}, state=OutboxState.FAILED)
    logged_in(client, "bea", admin=False)

    for url in pages(jobs, link, key):
        assert client.get(url).status_code == 403, url
    for url, data in posts(jobs, link, key):
        assert client.post(url, data).status_code == 403, url

    jobs.refresh_from_db()
    assert (jobs.name, jobs.enabled) == ("jobs", True)
    assert Queue.objects.count() == 1
    assert DatabaseMessage.objects.get().state == MessageState.DEAD
    assert QueueLink.objects.count() == 1
    assert OutboxMessage.objects.get().state == OutboxState.FAILED
    # No queue or outbox link in the navigation, nor a queue panel on the dashboard.
    home = client.get("/").content.decode()
    assert "/queues/" not in home
    assert "/outbox/" not in home
    assert "Queues and outbox" not in home


def test_admins_open_every_queue_page(admin: Client, jobs: Queue, orders: Any):
    link = QueueLink.objects.create(table=orders, queue=jobs, handler="log")
    (key,) = dead_letter(jobs, 1)
    for url in pages(jobs, link, key):
        assert admin.get(url).status_code == 200, url
    assert admin.get(f"/queues/{jobs.pk}/dead-letters/no-such-key/").status_code == 404
    assert admin.get("/queues/999999/").status_code == 404


# -- the secret ----------------------------------------------------------------------------------


def test_the_secret_is_never_rendered(admin: Client, orders: Any):
    created = admin.post(
        "/queues/new",
        {
            "name": "mail",
            "type": "rabbitmq",
            "url": DOWN_AMQP,
            "username": "app",
            "secret": SECRET,
            "visibility_timeout": 30,
            "max_attempts": 5,
            "enabled": "on",
        },
    )
    assert created.status_code == 302
    queue = Queue.objects.get(name="mail")
    assert queue.get_secret() == SECRET
    link = QueueLink.objects.create(table=orders, queue=queue, handler="log")

    rendered = [admin.get(url) for url in [*pages(queue, link), "/"]]
    rendered += [
        admin.post(f"/queues/{queue.pk}/check", **HTMX),
        admin.post(f"/queues/{queue.pk}/check"),
        admin.post(f"/queues/{queue.pk}/test-message", {"handler": "log"}, **HTMX),
        # Refused forms are drawn again with what was typed: never the secret.
        admin.post(
            "/queues/new",
            {"name": "bad name", "type": "rabbitmq", "secret": SECRET, "visibility_timeout": 1},
        ),
        admin.post(
            f"/queues/{queue.pk}/",
            {"name": "mail", "type": "rabbitmq", "url": "ftp://x", "secret": SECRET},
        ),
    ]
    for response in rendered:
        body = response.content.decode()
        assert SECRET not in body, response.request["PATH_INFO"]
        assert SECRET[-8:] not in body, response.request["PATH_INFO"]
        assert queue.secret_ciphertext not in body, response.request["PATH_INFO"]
    settings_page = admin.get(f"/queues/{queue.pk}/").content.decode()
    assert 'type="password" name="secret"' in settings_page
    assert "A secret is stored. Leave blank to keep it" in settings_page  # none of it shown


def test_a_blank_secret_keeps_the_stored_one_and_the_checkbox_removes_it(admin: Client):
    queue = services.create_queue(
        name="mail", type="rabbitmq", url=DOWN_AMQP, username="app", secret=SECRET
    )
    form = {
        "name": "mail",
        "type": "rabbitmq",
        "url": DOWN_AMQP,
        "username": "app",
        "secret": "",
        "visibility_timeout": 30,
        "max_attempts": 7,
        "enabled": "on",
    }
    assert admin.post(f"/queues/{queue.pk}/", form).status_code == 302
    queue.refresh_from_db()
    assert (queue.max_attempts, queue.get_secret()) == (7, SECRET)

    assert admin.post(f"/queues/{queue.pk}/", {**form, "secret": "another-one"}).status_code == 302
    queue.refresh_from_db()
    assert queue.get_secret() == "another-one"

    response = admin.post(f"/queues/{queue.pk}/", {**form, "clear_secret": "on"})
    assert response.status_code == 302
    queue.refresh_from_db()
    assert not queue.has_secret


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"type": "database", "url": "http://elsewhere"}, "url", "leave url blank"),
        ({"type": "sqs", "name": "orders", "fifo": "on"}, "name", "must end in '.fifo'"),
        ({"type": "kafka", "partitions": 5000}, "partitions", "1 to 1000 partitions"),
        ({"type": "rabbitmq", "url": "http://mq"}, "url", "amqp://"),
        ({"type": "rabbitmq", "secret": "pw"}, "username", "A password needs a user name"),
        ({"type": "database", "partitions": 3}, "partitions", "Kafka queues only"),
        ({"type": "database", "name": "bad name"}, "name", "Use 1 to 80 letters"),
    ],
)
def test_per_type_errors_show_by_field(
    admin: Client, data: dict[str, Any], field: str, message: str
):
    form = {"name": "orders", "visibility_timeout": 30, "max_attempts": 5, **data}
    response = admin.post("/queues/new", form)
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert any(message in error for error in errors[field]), errors
    assert Queue.objects.count() == 0
    label = str(response.context["form"][field].label)
    assert any(line.startswith(f"{label}: ") and message in line for line in summary(response))


def types_of_inputs(markup: str) -> dict[str, set[str]]:
    """For each input of the queue form, the queue types the page shows it for."""
    found = {}
    for types, inner in re.findall(
        r'<div class="contents" data-for-types="([^"]*)">(.*?)</div>\s*</div>', markup, re.S
    ):
        name = re.search(r'name="([a-z_]+)"', inner)
        assert name, inner
        found[name.group(1)] = set(types.split())
    return found


def test_each_engine_shows_only_its_own_inputs(admin: Client):
    page = admin.get("/queues/new")
    inputs = types_of_inputs(page.content.decode())
    shown = {t: {name for name, types in inputs.items() if t in types} for t in QUEUE_TYPES}
    common = {"name", "type", "max_attempts", "pause_after_failures", "allowed_handlers"}
    common |= {"enabled", "ordered_by_key"}
    assert shown["database"] == common | {"visibility_timeout"}
    assert shown["sqs"] == common | {
        "url",
        "region",
        "username",
        "secret",
        "fifo",
        "visibility_timeout",
    }
    assert shown["kafka"] == common | {"url", "username", "secret", "partitions"}
    assert shown["rabbitmq"] == common | {"url", "username", "secret", "max_priority"}
    assert "data-type-switch" in page.content.decode()
    assert "/static/backoffice/forms.js" in page.content.decode()


def test_a_form_with_only_the_types_inputs_is_saved(admin: Client):
    """What the page sends once the other types' inputs are hidden (and so disabled)."""
    database = admin.post(
        "/queues/new",
        {"name": "jobs", "type": "database", "visibility_timeout": 10, "max_attempts": 5},
    )
    assert database.status_code == 302
    kafka = admin.post(
        "/queues/new", {"name": "events", "type": "kafka", "partitions": 6, "max_attempts": 3}
    )
    assert kafka.status_code == 302, summary(kafka)
    events = Queue.objects.get(name="events")
    assert (events.partitions, events.visibility_timeout, events.region) == (6, 30, "")


def test_switching_to_the_database_type_drops_what_it_does_not_take(admin: Client):
    queue = services.create_queue(
        name="mail", type="sqs", region="eu-west-1", username="key-id", secret=SECRET, fifo=False
    )
    response = admin.post(
        f"/queues/{queue.pk}/",
        {"name": "mail", "type": "database", "visibility_timeout": 30, "max_attempts": 5},
    )
    assert response.status_code == 302, summary(response)
    queue.refresh_from_db()
    assert (queue.type, queue.region, queue.username, queue.has_secret) == (
        "database",
        "",
        "",
        False,
    )


def test_without_scripts_every_input_is_sent_and_what_does_not_apply_is_named(admin: Client):
    response = admin.post(
        "/queues/new",
        {
            "name": "jobs",
            "type": "database",
            "url": "",
            "region": "eu-west-1",
            "username": "",
            "secret": "",
            "visibility_timeout": "",
            "max_attempts": 5,
            "partitions": "",
            "max_priority": 0,
        },
    )
    assert response.status_code == 422
    assert summary(response) == [
        "Region: Region applies to SQS queues only.",
        "Visibility timeout (seconds): This field is required.",
    ]
    assert "Nothing was saved: 2 things need correcting." in page_text(response)


def test_a_duplicate_name_is_an_error_on_the_name(admin: Client, jobs: Queue):
    form = {"name": "jobs", "type": "database", "max_attempts": 5, "visibility_timeout": 30}
    response = admin.post("/queues/new", form)
    assert response.status_code == 422
    assert response.context["form"].errors["name"]


# -- operations ----------------------------------------------------------------------------------


def test_check_provision_and_a_test_message(admin: Client, jobs: Queue):
    check = admin.post(f"/queues/{jobs.pk}/check", **HTMX).content.decode()
    assert 'id="result-check"' in check
    assert "OK</strong>: database reachable" in check
    assert "OK" in admin.post(f"/queues/{jobs.pk}/provision", **HTMX).content.decode()

    sent = admin.post(
        f"/queues/{jobs.pk}/test-message",
        {"handler": "send_email", "payload": '{"to": "ada@example.com"}'},
        **HTMX,
    )
    assert sent.status_code == 200
    body = sent.content.decode()
    assert "&quot;message-id&quot;" in body
    assert "&quot;broker-id&quot;" in body
    row = DatabaseMessage.objects.get(queue=jobs)
    assert row.body == {"to": "ada@example.com", "handler": "send_email", "test": True}
    stats = admin.get(f"/queues/{jobs.pk}/stats").content.decode()
    assert 'data-stat="depth">1<' in stats

    bad = admin.post(f"/queues/{jobs.pk}/test-message", {"handler": "", "payload": "[1]"}, **HTMX)
    assert bad.status_code == 422
    assert "Enter a JSON object" in bad.content.decode()


def test_a_broker_that_does_not_answer_is_shown_not_a_500(admin: Client):
    queue = services.create_queue(name="down", type="rabbitmq", url=DOWN_AMQP)
    row = admin.get(f"/queues/{queue.pk}/stats")
    assert row.status_code == 200
    assert "unavailable" in row.content.decode()
    assert "127.0.0.1:1" in row.content.decode()  # the reason
    assert "Unavailable" in admin.get(f"/queues/{queue.pk}/stats?view=card").content.decode()
    assert "unavailable" in admin.get(f"/queues/{queue.pk}/stats?view=dead").content.decode()
    check = admin.post(f"/queues/{queue.pk}/check").content.decode()  # without htmx: the page
    assert "Failed</strong>: RabbitMQ at amqp://127.0.0.1:1/" in check
    letters = admin.get(f"/queues/{queue.pk}/dead-letters/")
    assert letters.status_code == 200
    assert "Unavailable" in letters.content.decode()
    purge = admin.get(f"/queues/{queue.pk}/purge")
    assert "does not answer now" in purge.content.decode()


def test_an_engine_that_fails_an_operation_is_said_on_the_page(admin: Client):
    queue = services.create_queue(name="down", type="rabbitmq", url=DOWN_AMQP)
    base = f"/queues/{queue.pk}"
    tested = admin.post(f"{base}/test-message", {"handler": "log", "payload": "{}"}, **HTMX)
    assert tested.status_code == 200
    assert "127.0.0.1:1" in tested.content.decode()
    purged = admin.post(f"{base}/purge", {"confirm": "yes"})
    assert purged.status_code == 200  # the purge page again, saying why
    assert "The queue was not purged: " in purged.content.decode()
    redriven = admin.post(f"{base}/dead-letters/redrive", {"all": "yes"}, follow=True)
    assert "Not sent back: " in redriven.content.decode()


def test_disable_and_enable(admin: Client, jobs: Queue):
    admin.post(f"/queues/{jobs.pk}/toggle")
    jobs.refresh_from_db()
    assert not jobs.enabled
    assert "disabled" in admin.get("/queues/").content.decode()
    admin.post(f"/queues/{jobs.pk}/toggle", {"next": "https://evil.example/"})
    jobs.refresh_from_db()
    assert jobs.enabled


def test_purge_needs_its_confirmation(admin: Client, jobs: Queue):
    publish(jobs, 2)
    dead_letter(jobs, 1)
    page = admin.get(f"/queues/{jobs.pk}/purge")
    assert page.status_code == 200
    assert "— 2 now" in page.content.decode()
    assert DatabaseMessage.objects.filter(state=MessageState.READY).count() == 2

    unconfirmed = admin.post(f"/queues/{jobs.pk}/purge", {}, follow=True)
    assert "Tick the confirmation" in unconfirmed.content.decode()
    assert DatabaseMessage.objects.filter(state=MessageState.READY).count() == 2

    done = admin.post(f"/queues/{jobs.pk}/purge", {"confirm": "yes"}, follow=True)
    assert "Queue jobs purged: 2 messages dropped." in page_text(done)
    assert DatabaseMessage.objects.filter(state=MessageState.READY).count() == 0
    assert DatabaseMessage.objects.filter(state=MessageState.DEAD).count() == 1


# -- the dead-letter browser ---------------------------------------------------------------------


def test_browse_send_back_and_delete_dead_letters(admin: Client, jobs: Queue):
    first, second, third = dead_letter(jobs, 3)
    listing = admin.get(f"/queues/{jobs.pk}/dead-letters/").content.decode()
    for message_id in (first, second, third):
        assert message_id in listing
    assert f"SMTP 550 for message {first}" in listing
    assert "send_email" in listing

    detail = admin.get(f"/queues/{jobs.pk}/dead-letters/{first}/").content.decode()
    assert "&quot;handler&quot;: &quot;send_email&quot;" in detail  # the body, indented JSON
    assert 'id="dead-letter-reason">SMTP 550' in detail

    # A row's own button sends back that one, whatever else is ticked.
    admin.post(f"/queues/{jobs.pk}/dead-letters/redrive", {"only": first, "key": [second]})
    row = DatabaseMessage.objects.get(message_id=first)
    assert (row.state, row.attempts, row.last_error) == (MessageState.READY, 0, "")
    assert DatabaseMessage.objects.get(message_id=second).state == MessageState.DEAD

    deleted = admin.post(f"/queues/{jobs.pk}/dead-letters/{second}/delete", follow=True)
    assert f"Dead letter {second} deleted." in deleted.content.decode()
    assert not DatabaseMessage.objects.filter(message_id=second).exists()

    everything = admin.post(f"/queues/{jobs.pk}/dead-letters/redrive", {"all": "yes"}, follow=True)
    assert "1 message sent back to jobs." in everything.content.decode()
    assert not DatabaseMessage.objects.filter(state=MessageState.DEAD).exists()
    assert "No dead letters" in everything.content.decode()

    nothing = admin.post(f"/queues/{jobs.pk}/dead-letters/redrive", {}, follow=True)
    assert "Tick the dead letters" in nothing.content.decode()


# -- table links ---------------------------------------------------------------------------------


def test_link_a_table_with_a_filter_and_preview_it(admin: Client, jobs: Queue, orders: Any):
    url = f"/queues/{jobs.pk}/links/"
    form = {"table": "orders", "on_create": "on", "on_update": "on", "handler": "log"}

    preview = admin.post(f"{url}preview", {**form, "filter": '{"status": "paid"}'}, **HTMX)
    assert 'id="match-count">2<' in preview.content.decode()
    assert "SO-2" in preview.content.decode()
    assert "SO-1" not in preview.content.decode()
    wrong = admin.post(f"{url}preview", {**form, "filter": '{"colour": "red"}'}, **HTMX)
    assert "colour" in wrong.content.decode()
    assert "match" not in wrong.content.decode()

    refused = admin.post(url, {**form, "filter": '{"total": {"$gt": 1}}'})
    assert refused.status_code == 422
    assert "total" in " ".join(refused.context["form"].errors["filter"])
    assert admin.post(url, {**form, "filter": "not json"}).status_code == 422
    assert admin.post(url, {"table": "orders", "handler": "log"}).status_code == 422  # no kind
    typo = admin.post(url, {**form, "handler": "sendmail"})
    assert typo.status_code == 422, "a handler registered nowhere here is refused"
    assert "No handler of that name is registered here" in typo.content.decode()
    assert '<option value="send_email">' in typo.content.decode(), "the known ones are offered"

    assert admin.post(url, {**form, "filter": '{"status": "paid"}'}).status_code == 302
    link = QueueLink.objects.get()
    assert (link.filter, link.on_delete, link.handler) == ({"status": "paid"}, False, "log")
    assert "log" in admin.get(url).content.decode()

    edit = f"{url}{link.pk}/"
    assert "&quot;status&quot;: &quot;paid&quot;" in admin.get(edit).content.decode()
    admin.post(edit, {**form, "on_delete": "on", "filter": "", "handler": "send_email"})
    link.refresh_from_db()
    assert (link.filter, link.on_delete, link.handler) == ({}, True, "send_email")
    services.update_queue(jobs, allowed_handlers=["log", "send_email", "ship_order"])
    remote = admin.post(edit, {**form, "handler": "ship_order"})
    assert remote.status_code == 302, "a handler of workers elsewhere, named by the queue"

    admin.post(f"{url}{link.pk}/delete")
    assert not QueueLink.objects.exists()


# -- the outbox ----------------------------------------------------------------------------------


def test_outbox_monitor_and_retry_now(admin: Client, jobs: Queue):
    other = services.create_queue(name="other", type="database")
    later = timezone.now() + dt.timedelta(minutes=10)
    pending = OutboxMessage.objects.create(
        queue=jobs,
        body={"handler": "x"},
        attempts=4,
        last_error="broker_unavailable: down",
        available_at=later,
        created_at=timezone.now() - dt.timedelta(minutes=3),
    )
    failed = OutboxMessage.objects.create(
        queue=jobs,
        body={"handler": "x"},
        attempts=2,
        state=OutboxState.FAILED,
        last_error="message_too_large: 2 MB",
    )
    untouched = OutboxMessage.objects.create(queue=other, body={"handler": "x"}, available_at=later)

    page = admin.get("/outbox/").content.decode()
    assert 'id="outbox-pending">2<' in page
    assert 'id="outbox-failed">1<' in page
    assert 'id="outbox-oldest">3 min' in page
    assert str(pending.message_id) in page
    assert "message_too_large: 2 MB" in page

    response = admin.post("/outbox/retry", {"queue": jobs.pk}, follow=True)
    assert "2 messages of jobs are due (1 pending, 1 failed before)" in response.content.decode()
    pending.refresh_from_db()
    failed.refresh_from_db()
    untouched.refresh_from_db()
    assert pending.available_at <= timezone.now()
    assert pending.attempts == 4  # a pending row keeps its count: only its wait ends
    assert (failed.state, failed.attempts) == (OutboxState.PENDING, 0)
    assert untouched.available_at == later

    admin.post("/outbox/retry")
    untouched.refresh_from_db()
    assert untouched.available_at <= timezone.now()


def test_the_dashboard_panel_counts_database_dead_letters(admin: Client, jobs: Queue):
    dead_letter(jobs, 2)
    remote = services.create_queue(name="remote", type="rabbitmq", url=DOWN_AMQP)
    OutboxMessage.objects.create(queue=jobs, body={"handler": "x"})
    home = admin.get("/").content.decode()
    assert "Queues and outbox" in home
    assert 'id="dashboard-outbox-pending">1<' in home
    assert '<strong class="dead-count error">2</strong>' in home
    # Brokers are asked after the page, by htmx, with a short timeout.
    assert f'hx-get="/queues/{remote.pk}/stats?view=dead"' in home


def test_message_ids_in_urls_are_looked_up_not_trusted(admin: Client, jobs: Queue):
    (message_id,) = dead_letter(jobs, 1)
    unknown = str(uuid.uuid4())
    assert admin.get(f"/queues/{jobs.pk}/dead-letters/{unknown}/").status_code == 404
    response = admin.post(f"/queues/{jobs.pk}/dead-letters/{unknown}/delete", follow=True)
    assert "Not deleted" in response.content.decode()
    assert DatabaseMessage.objects.filter(message_id=message_id).exists()


# -- wording -------------------------------------------------------------------------------------


def test_the_dashboard_names_the_engines_in_words(client: Client, settings: Any):
    settings.KAFKA_BOOTSTRAP_SERVERS = ""
    settings.AMQP_URL = "amqp://127.0.0.1:5672/"
    settings.SQS_ENDPOINT_URL = ""
    logged_in(client)
    home = page_text(client.get("/"))
    assert "database_queue" not in home
    assert (
        "Database (embedded): built in: its messages are rows of this deployment's database."
        in home
    )
    assert "RabbitMQ: set up: a queue without a URL of its own uses AMQP_URL." in home
    assert (
        "Apache Kafka: not set up (KAFKA_BOOTSTRAP_SERVERS is empty): each queue needs its own URL."
        in home
    )
    sqs = "Amazon SQS: not set up (SQS_ENDPOINT_URL is empty): a queue without a URL of its own"
    assert f"{sqs} uses AWS." in home
    assert "Across all tables." in home
    assert "In the tables you may see" not in home


def test_business_users_see_neither_engines_nor_other_tables_counted(client: Client):
    logged_in(client, "ada", admin=False)
    home = page_text(client.get("/"))
    assert "Engines configured" not in home
    assert "AMQP_URL" not in home
    assert "Across the tables shared with you." in home


def test_a_database_dead_letter_says_where_it_is_in_words(admin: Client, jobs: Queue):
    (message_id,) = dead_letter(jobs, 1)
    row = DatabaseMessage.objects.get(message_id=message_id)
    page = page_text(admin.get(f"/queues/{jobs.pk}/dead-letters/{message_id}/"))
    assert f"On the engine Row {row.pk} of the database queue's messages" in page
    assert "queues_databasemessage" not in page


def test_purging_one_message_says_one_message(admin: Client, jobs: Queue):
    publish(jobs, 1)
    done = admin.post(f"/queues/{jobs.pk}/purge", {"confirm": "yes"}, follow=True)
    assert "Queue jobs purged: 1 message dropped." in page_text(done)


def test_the_settings_page_lists_every_problem_by_label(admin: Client, jobs: Queue):
    form = {"name": "jobs", "type": "database", "visibility_timeout": -1, "max_attempts": 0}
    response = admin.post(f"/queues/{jobs.pk}/", form)
    assert response.status_code == 422
    lines = summary(response)
    assert any(line.startswith("Visibility timeout") for line in lines), lines
    assert any(line.startswith("Max attempts") for line in lines), lines
