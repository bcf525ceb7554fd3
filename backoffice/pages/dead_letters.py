"""The dead-letter browser of one queue: list, read, send back (as they are, or edited), delete.

Sending back as is puts the message on the queue again with its attempts reset. When its handler
is the problem (a typo, a renamed handler), an admin changes it first — for one letter with its
whole body (a JSON editor, checked before anything is sent), or for the ticked ones at once — and
the copy that goes back says so in its headers (who, when, from which message and handler). A
handler no module of this deployment registers is pointed out before anything is sent: sent
back unchanged, such a message only comes back.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.access import admin_required, get_for
from backoffice.forms.dead_letters import EditDeadLetterForm, HandlerForManyForm
from backoffice.pages.handlers import known_handlers
from backoffice.pages.queues import queue_context
from backoffice.partials import partial_for
from backoffice.problems import EngineCall
from queues import dead_letters
from queues.dead_letters import DeadLetterNotFound
from queues.messages import DeadLetter
from queues.models import Queue
from workers.dry_run import DryRunResult, dry_run_dead_letter
from workers.errors import DryRunBusy

#: Dead letters the browser lists.
DEAD_LETTER_PAGE = 50


def unknown_handler(handler: str, known: list[str]) -> str:
    """A warning when ``handler`` is registered nowhere here (empty when it is, or when
    nothing is known)."""
    if not known or handler in known:
        return ""
    return (
        f"No handler named {handler!r} is registered here: sent back with it, the message "
        "will be dead-lettered again unless a worker elsewhere knows it. Change the handler "
        "first."
    )


def _editor(request: HttpRequest) -> str:
    return request.user.get_username() if request.user.is_authenticated else "?"


@admin_required
@require_GET
def dead_letter_list(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_for(request, Queue, pk=queue_id)
    letters: list[DeadLetter] = []
    with EngineCall() as call:
        letters = dead_letters.list_dead_letters(queue, limit=DEAD_LETTER_PAGE + 1)
    known = known_handlers()
    shown = letters[:DEAD_LETTER_PAGE]
    context = queue_context(
        queue,
        "dead-letters",
        letters=shown,
        unknown={x.key for x in shown if unknown_handler(x.handler, known)},
        more=len(letters) > DEAD_LETTER_PAGE,
        dated=any(letter.at for letter in letters),  # the engine records when they died
        page_size=DEAD_LETTER_PAGE,
        problem=call.problem,
    )
    return render(request, "queues/dead_letters.html", context)


def _detail(
    request: HttpRequest,
    queue: Queue,
    key: str,
    form: EditDeadLetterForm | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    letter = None
    with EngineCall() as call:
        letter = dead_letters.find_dead_letter(queue, key)
    if isinstance(call.error, DeadLetterNotFound):
        status = 404
    known = known_handlers()
    context: dict[str, Any] = queue_context(
        queue,
        "dead-letters",
        letter=letter,
        key=key,
        problem=call.problem,
        warning=unknown_handler(letter.handler, known) if letter else "",
        form=form or (EditDeadLetterForm.for_body(letter.body) if letter else None),
        **extra,
    )
    context["crumbs"][-1:] = [
        ("Dead letters", reverse("backoffice:dead-letters", args=[queue.pk])),
        (key, None),
    ]
    return render(request, "queues/dead_letter.html", context, status=status)


@admin_required
@require_GET
def dead_letter_detail(request: HttpRequest, queue_id: int, key: str) -> HttpResponse:
    return _detail(request, get_for(request, Queue, pk=queue_id), key)


@admin_required
@require_http_methods(["POST"])
def dead_letter_edit(request: HttpRequest, queue_id: int, key: str) -> HttpResponse:
    """Send one dead letter back with the body and handler typed in its editor."""
    queue = get_for(request, Queue, pk=queue_id)
    form = EditDeadLetterForm(request.POST)
    if not form.is_valid():
        return _detail(request, queue, key, form, status=422)
    with EngineCall() as call:
        dead_letters.send_back_edited(queue, key, form.message(), editor=_editor(request))
    if not call.ok:
        form.add_error(None, call.problem)
        return _detail(request, queue, key, form, status=422)
    messages.success(
        request, f"Dead letter {key} sent back to {queue.name} as edited, for handler "
        f"{form.message()['handler']!r}.",
    )  # fmt: skip
    return redirect("backoffice:dead-letters", queue.pk)


@admin_required
@require_POST
def dead_letter_redrive(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Send back the ticked dead letters (``key``), or every one (``all``); with ``handler``
    (the "change handler" button), the ticked ones naming that handler instead."""
    queue = get_for(request, Queue, pk=queue_id)
    if request.POST.get("change") == "handler":
        return _redrive_with_handler(request, queue)
    everything = request.POST.get("all") == "yes"
    only = request.POST.get("only")  # a row's own button: that one, whatever else is ticked
    keys = [only] if only else request.POST.getlist("key")
    if not everything and not keys:
        messages.error(request, "Tick the dead letters to send back, or send back all.")
        return redirect("backoffice:dead-letters", queue.pk)
    with EngineCall(request, failed="Not sent back") as call:
        moved = dead_letters.redrive(queue, None if everything else keys)
    if call.ok:
        if moved or everything:
            count = f"{moved} message" + ("" if moved == 1 else "s")
            messages.success(request, f"{count} sent back to {queue.name}.")
        else:
            messages.warning(request, "Nothing was sent back: those dead letters are gone.")
    return redirect("backoffice:dead-letters", queue.pk)


def _redrive_with_handler(request: HttpRequest, queue: Queue) -> HttpResponse:
    form = HandlerForManyForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Not sent back: {error}")
        return redirect("backoffice:dead-letters", queue.pk)
    handler = form.cleaned_data["handler"].strip()
    with EngineCall(request, failed="Not sent back") as call:
        moved = dead_letters.send_back_with_handler(
            queue, form.cleaned_data["key"], handler, editor=_editor(request)
        )
    if call.ok:
        count = f"{moved} message" + ("" if moved == 1 else "s")
        messages.success(request, f"{count} sent back to {queue.name} for handler {handler!r}.")
    return redirect("backoffice:dead-letters", queue.pk)


@admin_required
@require_POST
def dead_letter_dry_run(request: HttpRequest, queue_id: int, key: str) -> HttpResponse:
    """Run the letter's handler once in a sandbox (``workers.dry_run``) and show what it would
    have done; the letter stays where it is."""
    queue = get_for(request, Queue, pk=queue_id)
    result: DryRunResult | None = None
    refused = ""
    with EngineCall() as call:
        try:
            result = dry_run_dead_letter(queue, key, request=request)
        except DryRunBusy as exc:
            refused = str(exc)
    refused = refused or call.problem
    status = 404 if isinstance(call.error, DeadLetterNotFound) else 503 if refused else 200
    if partial_for(request, "dry-run"):
        context = {"queue": queue, "key": key, "dry_run": result, "dry_run_problem": refused}
        return render(request, "queues/_dry_run.html", context, status=status)
    return _detail(request, queue, key, status=status, dry_run=result, dry_run_problem=refused)


@admin_required
@require_POST
def dead_letter_delete(request: HttpRequest, queue_id: int, key: str) -> HttpResponse:
    queue = get_for(request, Queue, pk=queue_id)
    with EngineCall(request, failed="Not deleted") as call:
        dead_letters.delete_dead_letter(queue, key)
    if call.ok:
        messages.success(request, f"Dead letter {key} deleted.")
    return redirect("backoffice:dead-letters", queue.pk)
