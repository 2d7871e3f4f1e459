"""The rating web page (Flask): one image at a time, blinded, every answer stored at once.

Raters join through a per-rater invitation link (open registration only when the server is
told so) and identify themselves once; a signed session cookie then carries who they are,
so a rater can only ever write their own answers. Forms carry CSRF tokens (Flask-WTF). Images
are served by id only, from the deck folder. The admin page and the CSV export need the
study's admin token, entered once in a sign-in form (a session cookie from then on) or
sent by a script in a header, never in a URL. The pages are one blueprint; what a form may
hold is checked by pure functions (``read_rater``, ``read_answer``) that name what is wrong.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect

from fetal_dcgan.survey.deck import deck_ids
from fetal_dcgan.survey.layout import StudyLayout
from fetal_dcgan.survey.storage import CHOICES, MAX_REQUEST_BYTES, RATER_FIELDS, RATING_SCALE, Storage

IMAGE_ID = re.compile(r"^[0-9a-f]{16}$")
RATER_ID = re.compile(r"^[\w .@-]{1,64}$")
RATINGS = tuple(str(r) for r in range(RATING_SCALE[0], RATING_SCALE[1] + 1))
EXPORT_COLUMNS = ["rater", *(f.name for f in RATER_FIELDS), "image", "choice", "rating", "answered", "seconds"]


class InvalidInput(ValueError):
    """A form value the page refuses; the message tells the rater what to do."""


def rater_order(rater: str, ids: list[str]) -> list[str]:
    """The deck in this rater's own shuffled order: the same every time they come back."""
    return sorted(ids, key=lambda image: hashlib.sha256(f"{rater}\0{image}".encode()).hexdigest())


def read_rater(form) -> tuple[str, dict]:
    """The start form's rater id and a value for each of ``RATER_FIELDS``."""
    rater = form.get("rater", "").strip()
    if not RATER_ID.match(rater):
        raise InvalidInput("Rater id: 1 to 64 letters, digits, spaces or . @ - _")
    try:
        return rater, {f.name: f.parse(form.get(f.name, "").strip()) for f in RATER_FIELDS}
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def read_answer(form, known: set[str]) -> tuple[str, str, int]:
    """An answer form's image id (one of ``known``), real/synthetic choice and 1-5 rating."""
    image, choice, rating = form.get("image", ""), form.get("choice", ""), form.get("rating", "")
    if image not in known:
        raise InvalidInput("Unknown image: reload the page.")
    if choice not in CHOICES:
        raise InvalidInput("Choose Real or Synthetic before submitting.")
    if rating not in RATINGS:
        raise InvalidInput(f"Rate the image quality from {RATINGS[0]} to {RATINGS[-1]} before submitting.")
    return image, choice, int(rating)


@dataclass(frozen=True)
class Study:
    """What the pages serve: the deck, its storage, its title and admin token."""

    layout: StudyLayout
    storage: Storage
    ids: list[str]
    admin_token: str
    title: str
    known: frozenset[str]
    open_registration: bool = False  # else raters join through invitation links only

    @classmethod
    def load(cls, folder: str | Path, open_registration: bool = False) -> Study:
        layout = StudyLayout(folder).check()
        ids = deck_ids(layout.root)
        return cls(
            layout,
            Storage(layout.ratings),
            ids,
            layout.admin_token.read_text().strip(),
            json.loads(layout.facts.read_text()).get("title", "Image rating study"),
            frozenset(ids),
            open_registration,
        )


pages = Blueprint("rating", __name__)


def study() -> Study:
    return current_app.extensions["rating_study"]


def bad_request(message: str, status: int = 400):
    return render_template("error.html", title=study().title, message=message), status


def is_admin_token(given: str) -> bool:
    return hmac.compare_digest(given.encode(), study().admin_token.encode())


def require_admin() -> None:
    """The admin signed in (a session cookie) or a script sending the token in a header;
    never a token in a URL, where logs and browser histories keep it."""
    if not (session.get("admin") or is_admin_token(request.headers.get("X-Admin-Token") or "")):
        abort(403)


def current_rater() -> str | None:
    """The rater of this session, if they are registered."""
    rater = session.get("rater")
    return rater if rater and study().storage.rater(rater) else None


@pages.after_app_request
def headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@pages.app_errorhandler(CSRFError)
def csrf_error(exc):
    return bad_request(
        "This form is out of date or did not come from this page (CSRF check failed). "
        "Go back, reload the page and submit again."
    )


@pages.app_errorhandler(403)
def forbidden(exc):
    return bad_request("Forbidden: this page needs the study's admin token.", 403)


@pages.app_errorhandler(404)
def not_found(exc):
    return bad_request("Not found.", 404)


@pages.get("/")
def start():
    if current_rater():
        return redirect(url_for("rating.rate"))
    return render_template(
        "start.html",
        title=study().title,
        fields=RATER_FIELDS,
        n=len(study().ids),
        invite=None,
        by_invitation=not study().open_registration,
    )


@pages.get("/join/<code>")
def join(code: str):
    """An invitation link: the start form, carrying the code."""
    return render_template(
        "start.html", title=study().title, fields=RATER_FIELDS, n=len(study().ids), invite=code, by_invitation=True
    )


@pages.post("/start")
def begin():
    try:
        rater, fields = read_rater(request.form)
    except InvalidInput as exc:
        return bad_request(str(exc))
    if study().open_registration:
        study().storage.add_rater(rater, fields)
    else:
        refused = study().storage.claim(request.form.get("invite", ""), rater, fields)
        if refused:
            return bad_request(refused, 403)
    session.clear()
    session["rater"] = rater
    return redirect(url_for("rating.rate"))


@pages.get("/rate")
def rate():
    rater = current_rater()
    if not rater:
        return redirect(url_for("rating.start"))
    done = study().storage.answered(rater)
    remaining = [i for i in rater_order(rater, study().ids) if i not in done]
    if not remaining:
        return redirect(url_for("rating.finished"))
    session["shown"] = {"image": remaining[0], "at": time.time()}
    return render_template("rate.html", title=study().title, image=remaining[0], k=len(done) + 1, n=len(study().ids))


@pages.post("/answer")
def answer():
    rater = current_rater()
    if not rater:
        return bad_request("Your session has ended: start again from the first page with the same rater id.")
    try:
        image, choice, rating = read_answer(request.form, study().known)
    except InvalidInput as exc:
        return bad_request(str(exc))
    shown = session.get("shown") or {}
    seconds = time.time() - shown["at"] if shown.get("image") == image else None
    study().storage.save_answer(rater, image, choice, rating, seconds)
    return redirect(url_for("rating.rate"))


@pages.get("/done")
def finished():
    return render_template("done.html", title=study().title, n=len(study().ids))


@pages.get("/image/<image_id>")
def image(image_id: str):
    if not IMAGE_ID.match(image_id) or image_id not in study().known:
        abort(404)
    return send_file(study().layout.image(image_id), mimetype="image/png", max_age=0)


@pages.get("/admin")
def admin():
    if not session.get("admin"):
        return render_template("admin_login.html", title=study().title)
    return render_template(
        "admin.html", title=study().title, progress=study().storage.progress(), fields=RATER_FIELDS, n=len(study().ids)
    )


@pages.post("/admin")
def admin_login():
    if not is_admin_token(request.form.get("token", "")):
        return bad_request("Wrong admin token: it is the text in the study's private/admin_token file.", 403)
    session.clear()  # an admin session is nobody's rater session
    session["admin"] = True
    return redirect(url_for("rating.admin"))


@pages.get("/export.csv")
def export():
    require_admin()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(study().storage.answers())
    return Response(
        buffer.getvalue(), mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=answers.csv"}
    )


def create_app(folder: str | Path, open_registration: bool = False) -> Flask:
    """The rating site of the study in ``folder``: raters join through invitation links
    (``survey invite``), or anyone with the URL when ``open_registration``."""
    loaded = Study.load(folder, open_registration)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=loaded.layout.secret_key.read_text().strip(),
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
    )
    app.extensions["rating_study"] = loaded
    CSRFProtect(app)
    app.register_blueprint(pages)
    return app
