"""The rating web page (Flask): one image at a time, blinded, every answer stored at once.

Raters identify themselves once; a signed session cookie then carries who they are, so a
rater can only ever write their own answers. Forms carry CSRF tokens (Flask-WTF). Images
are served by id only, from the deck folder. The admin page and the CSV export need the
study's admin token.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import math
import re
import time
from pathlib import Path

from flask import Flask, Response, abort, redirect, render_template, request, send_file, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from fetal_dcgan.survey.deck import deck_ids
from fetal_dcgan.survey.layout import StudyLayout
from fetal_dcgan.survey.storage import ROLES, Storage

IMAGE_ID = re.compile(r"^[0-9a-f]{16}$")
RATER_ID = re.compile(r"^[\w .@-]{1,64}$")


def rater_order(rater: str, ids: list[str]) -> list[str]:
    """The deck in this rater's own shuffled order: the same every time they come back."""
    return sorted(ids, key=lambda image: hashlib.sha256(f"{rater}\0{image}".encode()).hexdigest())


def create_app(study: str | Path) -> Flask:
    layout = StudyLayout(study).check()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=layout.secret_key.read_text().strip(),
                      WTF_CSRF_TIME_LIMIT=None, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      MAX_CONTENT_LENGTH=16 * 1024)
    CSRFProtect(app)
    storage = Storage(layout.ratings)
    ids = deck_ids(layout.root)
    known = set(ids)
    admin_token = layout.admin_token.read_text().strip()
    title = json.loads(layout.facts.read_text()).get("title", "Image rating study")

    def bad_request(message: str, status: int = 400):
        return render_template("error.html", title=title, message=message), status

    def require_admin() -> None:
        given = request.args.get("token") or request.headers.get("X-Admin-Token") or ""
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            abort(403)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return bad_request("This form is out of date or did not come from this page (CSRF check failed). "
                           "Go back, reload the page and submit again.")

    @app.errorhandler(403)
    def forbidden(exc):
        return bad_request("Forbidden: this page needs the study's admin token.", 403)

    @app.errorhandler(404)
    def not_found(exc):
        return bad_request("Not found.", 404)

    @app.get("/")
    def start():
        if session.get("rater") and storage.rater(session["rater"]):
            return redirect(url_for("rate"))
        return render_template("start.html", title=title, roles=ROLES, n=len(ids))

    @app.post("/start")
    def begin():
        rater = request.form.get("rater", "").strip()
        role = request.form.get("role", "")
        years = request.form.get("years", "").strip()
        if not RATER_ID.match(rater):
            return bad_request("Rater id: 1 to 64 letters, digits, spaces or . @ - _")
        if role not in ROLES:
            return bad_request(f"Role: choose one of {', '.join(ROLES)}.")
        try:
            years_value = float(years)
        except ValueError:
            years_value = math.nan
        if not 0 <= years_value <= 80:  # NaN fails too
            return bad_request("Years of experience: a number from 0 to 80.")
        storage.add_rater(rater, role, years_value)
        session.clear()
        session["rater"] = rater
        return redirect(url_for("rate"))

    @app.get("/rate")
    def rate():
        rater = session.get("rater")
        if not rater or not storage.rater(rater):
            return redirect(url_for("start"))
        done = storage.answered(rater)
        remaining = [i for i in rater_order(rater, ids) if i not in done]
        if not remaining:
            return redirect(url_for("finished"))
        image = remaining[0]
        session["shown"] = {"image": image, "at": time.time()}
        return render_template("rate.html", title=title, image=image, k=len(done) + 1, n=len(ids))

    @app.post("/answer")
    def answer():
        rater = session.get("rater")
        if not rater or not storage.rater(rater):
            return bad_request("Your session has ended: start again from the first page with the same rater id.")
        image = request.form.get("image", "")
        choice = request.form.get("choice", "")
        rating = request.form.get("rating", "")
        if image not in known:
            return bad_request("Unknown image: reload the page.")
        if choice not in ("real", "synthetic"):
            return bad_request("Choose Real or Synthetic before submitting.")
        if rating not in {"1", "2", "3", "4", "5"}:
            return bad_request("Rate the image quality from 1 to 5 before submitting.")
        shown = session.get("shown") or {}
        seconds = time.time() - shown["at"] if shown.get("image") == image else None
        storage.save_answer(rater, image, choice, int(rating), seconds)
        return redirect(url_for("rate"))

    @app.get("/done")
    def finished():
        return render_template("done.html", title=title, n=len(ids))

    @app.get("/image/<image_id>")
    def image(image_id: str):
        if not IMAGE_ID.match(image_id) or image_id not in known:
            abort(404)
        return send_file(layout.image(image_id), mimetype="image/png", max_age=0)

    @app.get("/admin")
    def admin():
        require_admin()
        return render_template("admin.html", title=title, progress=storage.progress(), n=len(ids),
                               token=request.args.get("token", ""))

    @app.get("/export.csv")
    def export():
        require_admin()
        rows = storage.answers()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["rater", "role", "years", "image", "choice", "rating",
                                                    "answered", "seconds"])
        writer.writeheader()
        writer.writerows(rows)
        return Response(buffer.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=answers.csv"})

    return app
