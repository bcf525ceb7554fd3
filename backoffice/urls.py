"""The back-office's pages. Every one needs a logged-in user (``login_required`` below, and
``admin_required`` on the schema pages, which includes it)."""

from django.contrib.auth.decorators import login_required
from django.urls import path

from backoffice import streams, views
from backoffice.pages import (
    audit,
    dead_letters,
    fields,
    outbox,
    queues,
    records,
    replays,
    rules,
    tables,
    tokens,
    trace,
    transfer,
    webhooks,
)

app_name = "backoffice"

urlpatterns = [
    path("", views.home, name="home"),
    path("streams/heartbeat", streams.heartbeat, name="stream-heartbeat"),
    # Message traces: every user, for the records of the tables granted to their groups.
    path("messages/", login_required(trace.message_search), name="messages"),
    path("messages/<str:message_id>/", login_required(trace.message_detail), name="message"),
    # Records: every user, for the tables granted to their groups.
    path("records/", login_required(records.data_index), name="data"),
    path("records/<slug:slug>/", login_required(records.record_list), name="records"),
    path("records/<slug:slug>/new", login_required(records.record_create), name="record-new"),
    path(
        "records/<slug:slug>/validate",
        login_required(records.record_validate),
        name="record-validate",
    ),
    path(
        "records/<slug:slug>/lookup/<str:key>",
        login_required(records.record_lookup),
        name="record-lookup",
    ),
    path("records/<slug:slug>/export.csv", login_required(transfer.export_csv), name="export"),
    path("records/<slug:slug>/import", login_required(transfer.import_csv), name="import"),
    path(
        "records/<slug:slug>/<int:record_id>/", login_required(records.record_detail), name="record"
    ),
    path(
        "records/<slug:slug>/<int:record_id>/edit",
        login_required(records.record_edit),
        name="record-edit",
    ),
    path(
        "records/<slug:slug>/<int:record_id>/delete",
        login_required(records.record_delete),
        name="record-delete",
    ),
    # Tables, fields, rules and permissions: admins.
    path("tables/", tables.table_list, name="tables"),
    path("tables/new", tables.table_create, name="table-new"),
    path("tables/<slug:slug>/", tables.table_settings, name="table"),
    path("tables/<slug:slug>/delete", tables.table_delete, name="table-delete"),
    path("tables/<slug:slug>/permissions", tables.table_grants, name="grants"),
    path("tables/<slug:slug>/fields/", fields.field_list, name="fields"),
    path("tables/<slug:slug>/fields/options", fields.field_options, name="field-options"),
    path("tables/<slug:slug>/fields/<str:key>/edit", fields.field_edit, name="field-edit"),
    path("tables/<slug:slug>/fields/<str:key>/move", fields.field_move, name="field-move"),
    path("tables/<slug:slug>/fields/<str:key>/delete", fields.field_delete, name="field-delete"),
    path("tables/<slug:slug>/rules/", rules.rule_list, name="rules"),
    path("tables/<slug:slug>/rules/params", rules.rule_params, name="rule-params"),
    path("tables/<slug:slug>/rules/<int:rule_id>/delete", rules.rule_delete, name="rule-delete"),
    # Replays of a table link's records: admins.
    path("replays/", replays.replay_list, name="replays"),
    path("replays/new", replays.replay_create, name="replay-new"),
    path("replays/<int:replay_id>/", replays.replay_detail, name="replay"),
    path("replays/<int:replay_id>/cancel", replays.replay_cancel, name="replay-cancel"),
    # Queues, their dead letters and table links, and the outbox: admins.
    path("queues/", queues.queue_list, name="queues"),
    path("queues/new", queues.queue_create, name="queue-new"),
    path("queues/<int:queue_id>/", queues.queue_detail, name="queue"),
    path("queues/<int:queue_id>/stats", queues.queue_stats, name="queue-stats"),
    path("queues/<int:queue_id>/check", queues.queue_check, name="queue-check"),
    path("queues/<int:queue_id>/provision", queues.queue_provision, name="queue-provision"),
    path("queues/<int:queue_id>/test-message", queues.queue_test_message, name="queue-test"),
    path("queues/<int:queue_id>/toggle", queues.queue_toggle, name="queue-toggle"),
    path("queues/<int:queue_id>/purge", queues.queue_purge, name="queue-purge"),
    path("queues/<int:queue_id>/resume", queues.queue_resume, name="queue-resume"),
    path("queues/<int:queue_id>/dead-letters/", dead_letters.dead_letter_list, name="dead-letters"),
    path(
        "queues/<int:queue_id>/dead-letters/redrive",
        dead_letters.dead_letter_redrive,
        name="dead-letter-redrive",
    ),
    path(
        "queues/<int:queue_id>/dead-letters/<str:key>/",
        dead_letters.dead_letter_detail,
        name="dead-letter",
    ),
    path(
        "queues/<int:queue_id>/dead-letters/<str:key>/edit",
        dead_letters.dead_letter_edit,
        name="dead-letter-edit",
    ),
    path(
        "queues/<int:queue_id>/dead-letters/<str:key>/dry-run",
        dead_letters.dead_letter_dry_run,
        name="dead-letter-dry-run",
    ),
    path(
        "queues/<int:queue_id>/dead-letters/<str:key>/delete",
        dead_letters.dead_letter_delete,
        name="dead-letter-delete",
    ),
    path("queues/<int:queue_id>/links/", outbox.link_list, name="queue-links"),
    path("queues/<int:queue_id>/links/preview", outbox.link_preview, name="link-preview"),
    path("queues/<int:queue_id>/links/<int:link_id>/", outbox.link_edit, name="link-edit"),
    path(
        "queues/<int:queue_id>/links/<int:link_id>/delete",
        outbox.link_delete,
        name="link-delete",
    ),
    path("outbox/", outbox.outbox_monitor, name="outbox"),
    path("outbox/retry", outbox.outbox_retry, name="outbox-retry"),
    # Webhook endpoints, the only places the webhook handler posts to: admins.
    path("webhooks/", webhooks.webhook_list, name="webhooks"),
    path("webhooks/new", webhooks.webhook_create, name="webhook-new"),
    path("webhooks/<int:endpoint_id>/", webhooks.webhook_edit, name="webhook"),
    path("webhooks/<int:endpoint_id>/test", webhooks.webhook_test, name="webhook-test"),
    path("webhooks/<int:endpoint_id>/delete", webhooks.webhook_delete, name="webhook-delete"),
    # API tokens: each user their own; admins everyone's.
    path("tokens/", login_required(tokens.token_list), name="tokens"),
    path("tokens/<int:token_id>/revoke", login_required(tokens.token_revoke), name="token-revoke"),
    # The audit trail (admins).
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
]
