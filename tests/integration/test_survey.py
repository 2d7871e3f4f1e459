"""The rating study end to end: deck, the real page in headless Chromium, security, analysis."""

from __future__ import annotations

import csv
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import torch
from PIL import Image
from scipy import stats

from fetal_dcgan.errors import UserError
from fetal_dcgan.survey.__main__ import main as survey_main
from fetal_dcgan.survey.agreement import cohen_kappa, fleiss_kappa, icc_2_1, weighted_kappa
from fetal_dcgan.survey.analysis import analyze
from fetal_dcgan.survey.app import create_app
from fetal_dcgan.survey.deck import build_deck, read_key
from fetal_dcgan.survey.storage import RATER_FIELDS, Storage

from helpers import make_hc18, noise_image, run_permutation_p, write_image

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian package chromium is not installed (apt-get install chromium; .ci/run does this)",
)


def make_sources(root: Path) -> tuple[Path, Path]:
    real = root / "real"
    for i in range(6):
        write_image(real / f"scan_{i:02d}.png", noise_image(i, (40, 60)))  # not square: fitted to 32x32
    sweep = root / "sweep"
    for run in ("0", "1"):
        for i in range(5):
            write_image(sweep / run / "samples" / "epoch=0002" / f"{i:04d}.png", noise_image(100 + i, (32, 32)))
    return real, sweep


@pytest.fixture()
def study(tmp_path) -> Path:
    real, sweep = make_sources(tmp_path)
    assert (
        survey_main(
            [
                "build",
                "--real",
                str(real),
                "--fake",
                str(sweep),
                "--n-real",
                "4",
                "--n-fake",
                "4",
                "--out",
                str(tmp_path / "study"),
            ]
        )
        == 0
    )
    return tmp_path / "study"


class Server:
    """The study's app on waitress (what `survey serve` runs) on 127.0.0.1, restartable on its port."""

    def __init__(self, study: Path, port: int = 0, open_registration: bool = True):
        import waitress

        self.study = study
        app = create_app(study, open_registration)
        self.server = waitress.create_server(app, host="127.0.0.1", port=port, threads=8)
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop as a killed process would: the listening socket and every open connection."""
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.close()
        self.thread.join(5)


@pytest.fixture()
def server(study):
    running = Server(study)
    yield running
    running.stop()


def truth_of(study: Path) -> dict[str, str]:
    return {row["id"]: row["truth"] for row in read_key(study)}


# -- deck ----------------------------------------------------------------------------------


def test_deck_is_blinded_balanced_and_keyed(study, tmp_path):
    key = read_key(study)
    assert len(key) == 8 and sum(r["truth"] == "real" for r in key) == 4
    assert sorted(r["run"] for r in key if r["truth"] == "synthetic") == ["0", "0", "1", "1"]
    assert all(r["epoch"] == "2" for r in key if r["truth"] == "synthetic")
    images = sorted((study / "images").glob("*.png"))
    assert {p.stem for p in images} == {r["id"] for r in key}
    for path in images:
        assert re.fullmatch(r"[0-9a-f]{16}", path.stem)
        with Image.open(path) as img:
            assert img.size == (32, 32) and img.mode == "L" and not img.info  # no metadata to give anything away
    assert not list(study.glob("images/*key*")) and (study / "private" / "key.csv").is_file()
    real, sweep = make_sources(tmp_path / "again")
    with pytest.raises(UserError, match="already exists"):
        build_deck(real, [sweep], study)
    with pytest.raises(UserError, match="Only 10 synthetic images"):
        build_deck(real, [sweep], tmp_path / "new", n_real=2, n_fake=11)


def test_deck_from_hc18_layout_holds_scans_only(tmp_path):
    real = make_hc18(tmp_path / "hc18")  # 6 scans beside 6 annotation masks, a CSV and stray files
    _, sweep = make_sources(tmp_path)
    study = build_deck(real, [sweep], tmp_path / "study", n_real=6, n_fake=4)
    sources = [r["source"] for r in read_key(tmp_path / "study") if r["truth"] == "real"]
    assert study["n_real"] == 6 and not [s for s in sources if "Annotation" in s]
    with pytest.raises(UserError, match="holds only 6 images"):
        build_deck(real, [sweep], tmp_path / "more", n_real=7, n_fake=4)


def test_deck_prepares_real_images_as_the_run_did(tmp_path):
    real, sweep = make_sources(tmp_path)
    (sweep / "0" / "config.yaml").write_text("data:\n  fit: squash\n  image_size: 32\n")
    (sweep / "1" / "config.yaml").write_text("data:\n  fit: squash\n  image_size: 32\n")
    study = build_deck(real, [sweep], tmp_path / "study", n_real=4, n_fake=4)
    assert study["fit"] == "squash" and "config.yaml" in study["fit_source"]
    with pytest.raises(UserError, match="--fit pad differs from the run's data.fit=squash"):
        build_deck(real, [sweep], tmp_path / "pad", n_real=4, n_fake=4, fit="pad")
    (sweep / "1" / "config.yaml").write_text("data:\n  fit: pad\n  image_size: 32\n")
    with pytest.raises(UserError, match="different preprocessing"):
        build_deck(real, [sweep], tmp_path / "mixed", n_real=4, n_fake=4)
    (sweep / "1" / "config.yaml").write_text("data:\n  fit: squash\n  image_size: 64\n")
    with pytest.raises(UserError, match="different preprocessing"):
        build_deck(real, [sweep / "1"], tmp_path / "size", n_real=4, n_fake=4, config=sweep / "0" / "config.yaml")


def test_deck_real_images_are_the_training_pipelines_own(tmp_path):
    """paper64's preparation (squash, tensor resize without antialiasing, 64 px) on phantom
    scans: every real image of the deck is pixel for pixel the training pipeline's image of the
    same file, so the LBP vectors of the two sets are 0 apart; the antialiased pipeline the deck
    once used is measurably far, so a rater could have told real images by their smoothness."""
    from fetal_dcgan.data.phantom import PhantomSpec, render_image
    from fetal_dcgan.data.preprocess import read_image_set
    from fetal_dcgan.metrics.lbp import l1_distance, lbp_histograms, lbp_vector

    spec = PhantomSpec()
    real = tmp_path / "real"
    for i in range(8):
        write_image(real / f"phantom_{i}.png", render_image(spec, i))
    run = tmp_path / "run"
    for i in range(4):
        write_image(run / "samples" / "epoch=0002" / f"{i:04d}.png", noise_image(i, (64, 64)))
    (run / "config.yaml").write_text("data:\n  fit: squash\n  image_size: 64\n  resize: tensor\n")
    study = build_deck(real, [run], tmp_path / "study", n_real=8, n_fake=4)
    assert (study["fit"], study["resize"], study["image_size"]) == ("squash", "tensor", 64)
    deck = {Path(r["source"]).name: r["id"] for r in read_key(tmp_path / "study") if r["truth"] == "real"}
    files = sorted(real.glob("*.png"))
    shown = read_image_set([tmp_path / "study" / "images" / f"{deck[f.name]}.png" for f in files])
    trained = read_image_set(files, 64, "squash", resize="tensor")
    antialiased = read_image_set(files, 64, "squash", resize="antialias")
    assert torch.equal(shown, trained)

    def distance(a, b) -> float:
        return float(l1_distance(lbp_vector(lbp_histograms(a)), lbp_vector(lbp_histograms(b))))

    assert distance(shown, trained) == 0.0
    assert distance(antialiased, trained) > 0.05  # the negative control: the other pipeline is visible


def test_without_real_the_deck_shows_the_runs_held_out_reference(tmp_path):
    real, sweep = make_sources(tmp_path)
    reference = sorted(real.glob("*.png"))[:5]
    for run in ("0", "1"):
        (sweep / run / "config.yaml").write_text("data:\n  fit: squash\n  image_size: 32\n")
        (sweep / run / "reference.txt").write_text("".join(f"{p}\n" for p in reference))
    study = build_deck(None, [sweep], tmp_path / "study", n_real=5, n_fake=4)
    assert "reference.txt" in study["real"]
    shown = {r["source"] for r in read_key(tmp_path / "study") if r["truth"] == "real"}
    assert shown == {str(p) for p in reference}  # the held-out images, never the sixth, unlisted one
    (sweep / "1" / "reference.txt").write_text(f"{reference[0]}\n")
    with pytest.raises(UserError, match="different reference sets"):
        build_deck(None, [sweep], tmp_path / "two", n_real=1, n_fake=4)
    (sweep / "1" / "reference.txt").unlink()
    (sweep / "0" / "reference.txt").write_text(f"{tmp_path / 'elsewhere.png'}\n")
    with pytest.raises(UserError, match="not on this machine"):
        build_deck(None, [sweep], tmp_path / "gone", n_real=1, n_fake=4)
    (sweep / "0" / "reference.txt").unlink()
    with pytest.raises(UserError, match="--real: give the folder"):
        build_deck(None, [sweep], tmp_path / "none", n_real=1, n_fake=4)


def test_paper_design_is_68_images_3_from_each_of_19_sets(tmp_path):
    real = tmp_path / "real"
    for i in range(12):
        write_image(real / f"scan_{i:02d}.png", noise_image(i, (32, 32)))
    for run in range(5):
        for epoch in (300, 500, 800, 1000):
            for i in range(4):
                write_image(
                    tmp_path / "sweep" / str(run) / "samples" / f"epoch={epoch:04d}" / f"{i:04d}.png",
                    noise_image(10_000 + 100 * run + epoch + i, (32, 32)),
                )
    assert (
        survey_main(
            [
                "build",
                "--real",
                str(real),
                "--fake",
                str(tmp_path / "sweep"),
                "--design",
                "paper",
                "--out",
                str(tmp_path / "study"),
            ]
        )
        == 0
    )
    key = read_key(tmp_path / "study")
    synthetic = [(r["run"], r["epoch"]) for r in key if r["truth"] == "synthetic"]
    assert len(key) == 68 and len(synthetic) == 57 and sum(r["truth"] == "real" for r in key) == 11
    assert len(set(synthetic)) == 19 and all(synthetic.count(s) == 3 for s in set(synthetic))
    with pytest.raises(UserError, match="19 synthetic sets"):
        build_deck(real, [tmp_path / "sweep" / "0"], tmp_path / "few", design="paper")


# -- the page in a real browser --------------------------------------------------------------


def rate_in_browser(page, url: str, rater: str, role: str, years: str, answer) -> list[str]:
    """Go through the whole deck as one rater; ``answer(image_id)`` -> (choice, rating, by_keyboard)."""
    page.goto(url + "/")
    page.get_by_test_id("rater-id").fill(rater)
    page.get_by_test_id("rater-role").select_option(role)
    page.get_by_test_id("rater-years").fill(years)
    page.get_by_test_id("start").click()
    seen, pages = [], []
    while page.get_by_test_id("done").count() == 0:
        src = page.get_by_test_id("image").get_attribute("src")
        image_id = src.rsplit("/", 1)[1]
        assert page.get_by_test_id("progress").inner_text() == f"Image {len(seen) + 1} of 8"
        pages.append(page.content().replace(image_id, "ID"))
        choice, rating, keyboard = answer(image_id)
        if keyboard:
            page.keyboard.press("r" if choice == "real" else "s")
            page.keyboard.press(str(rating))
            with page.expect_navigation():
                page.keyboard.press("Enter")
        else:
            page.get_by_test_id(f"choice-{choice}").check()
            page.get_by_test_id(f"rating-{rating}").check()
            with page.expect_navigation():
                page.get_by_test_id("submit").click()
        seen.append(image_id)
    return seen, pages


def sign_in_as_admin(browser, url: str, token: str):
    """The admin page in a fresh browser context: the token typed once into the sign-in form."""
    page = browser.new_context().new_page()
    page.goto(url + "/admin")
    page.get_by_test_id("admin-token").fill(token)
    page.get_by_test_id("admin-sign-in").click()
    page.wait_for_selector("text=progress")
    assert token not in page.url
    return page


@needs_chromium
def test_two_raters_complete_the_study_in_chromium(study, server):
    from playwright.sync_api import sync_playwright

    truth = truth_of(study)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            expert = browser.new_context().new_page()
            requests_seen = []
            expert.on("request", lambda r: requests_seen.append(r.url))
            order_a, pages_a = rate_in_browser(
                expert,
                server.url,
                "dr-a",
                "clinician",
                "10",
                lambda i: (truth[i], 5 if truth[i] == "real" else 2, False),
            )
            novice = browser.new_context().new_page()
            order_b, _ = rate_in_browser(novice, server.url, "eng b", "engineer", "1", lambda i: ("real", 3, True))
            assert novice.get_by_test_id("done").inner_text() == "Thank you"
            admin = sign_in_as_admin(browser, server.url, (study / "private" / "admin_token").read_text().strip())
            assert "8 / 8" in admin.content()
            admin.screenshot(path=str(study.parent / "admin.png"))
        finally:
            browser.close()
    assert sorted(order_a) == sorted(order_b) == sorted(truth) and order_a != order_b  # shuffled per rater
    # Blinding: apart from the id, progress and CSRF token, every rating page is the same page.
    normalise = [re.sub(r'value="[^"]{40,}"|Image \d of 8', "", page) for page in pages_a]
    assert len(set(normalise)) == 1
    for leak in ("phantom", "scan_", "epoch", "samples", "sweep", "truth"):
        assert leak not in normalise[0] and not any(leak in u for u in requests_seen)

    answers = Storage(study / "ratings.sqlite").answers()
    assert len(answers) == 16 and len({(a["rater"], a["image"]) for a in answers}) == 16
    assert all(a["seconds"] is not None and a["seconds"] >= 0 for a in answers)
    token = (study / "private" / "admin_token").read_text().strip()
    export = requests.get(f"{server.url}/export.csv", headers={"X-Admin-Token": token}, timeout=10)
    rows = list(csv.DictReader(export.text.splitlines()))
    assert export.status_code == 200 and len(rows) == 16
    assert {r["rater"] for r in rows} == {"dr-a", "eng b"} and {r["role"] for r in rows} == {"clinician", "engineer"}

    paths = analyze(study)
    per_rater = pd.read_csv(paths["per_rater"]).set_index("rater")
    # By hand: dr-a is always right; eng b calls all 8 real, so half right and every synthetic image "real".
    assert per_rater.loc["dr-a", "accuracy"] == 1.0 and per_rater.loc["eng b", "accuracy"] == 0.5
    assert per_rater.loc["dr-a", "synthetic_called_real"] == 0 and per_rater.loc["eng b", "synthetic_called_real"] == 1
    assert per_rater.loc["eng b", "sensitivity"] == 0 and per_rater.loc["eng b", "specificity"] == 1
    assert per_rater.loc["dr-a", "quality_real"] == 5 and per_rater.loc["dr-a", "quality_synthetic"] == 2
    assert per_rater.loc["dr-a", "auc"] == 1 and per_rater.loc["eng b", "auc"] == 0.5  # all 3s: chance
    low, high = per_rater.loc["dr-a", ["synthetic_called_real_ci_low", "synthetic_called_real_ci_high"]]
    assert low == 0 and high == pytest.approx(0.4899, abs=1e-4)  # Wilson, 0 of 4
    per_role = pd.read_csv(paths["per_role"]).set_index("role")
    assert "no role-level inference" in per_role.loc["engineer", "note"]  # one engineer: per rater only
    agree = pd.read_csv(paths["agreement"]).set_index("measure")
    # p_o = 4/8 agree (the real images); p_e = 0.5 * 1 + 0.5 * 0 = 0.5  ->  kappa = 0
    assert agree.loc["cohen_kappa", "value"] == pytest.approx(0.0)
    assert agree.loc["pabak", "value"] == pytest.approx(0.0) and agree.loc["bias_index", "value"] == pytest.approx(0.5)
    assert agree.loc["cohen_kappa", "ci_low"] <= 0 <= agree.loc["cohen_kappa", "ci_high"]
    mrmc = pd.read_csv(paths["mrmc_treatments"]).set_index("analysis")  # the readers as a reader study
    assert mrmc.loc["RRRC", "estimate"] == pytest.approx(0.75)  # reader-averaged AUC of 1 and 0.5
    assert mrmc.loc["RRFC", "se"] == pytest.approx(0.25)  # sqrt(MS(R) / J), MS(R) = 0.125 from 2 readers


# -- security and robustness (real HTTP server) --------------------------------------------------


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def start_session(url: str, rater: str) -> requests.Session:
    s = requests.Session()
    page = s.get(url + "/", timeout=10).text
    r = s.post(
        url + "/start", data={"csrf_token": csrf(page), "rater": rater, "role": "engineer", "years": "2"}, timeout=10
    )
    assert r.status_code == 200 and "Image 1 of 8" in r.text
    return s


def test_serve_runs_on_waitress_and_prints_no_secret(study):
    """`survey serve` as a user starts it: a production WSGI server (waitress), and a banner
    that says where the admin token is instead of printing it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "fetal_dcgan.survey", "serve", str(study), "--port", str(port)]
    served = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                first = requests.get(url + "/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert first.status_code == 200 and first.headers["Server"] == "fetal_dcgan survey"
    finally:
        served.terminate()
        output = served.communicate(timeout=10)[0]
    token = (study / "private" / "admin_token").read_text().strip()
    assert f"Admin:  {url}/admin (sign in with the token in" in output and token not in output


def join(session: requests.Session, link: str, rater: str) -> requests.Response:
    page = session.get(link, timeout=10).text
    form = {"csrf_token": csrf(page), "invite": link.rsplit("/", 1)[1], "rater": rater, "role": "engineer"}
    return session.post(link.rsplit("/join/", 1)[0] + "/start", data={**form, "years": "2"}, timeout=10)


def test_invitation_links_register_one_rater_each(study, capsys):
    """By default raters join only through their own link: a link works for the first rater who
    uses it (and for them again), a used or unknown one is refused and stores nothing."""
    server = Server(study, open_registration=False)
    try:
        assert survey_main(["invite", str(study), "--n", "2", "--url", server.url]) == 0
        first, second = capsys.readouterr().out.split()
        assert first.startswith(server.url + "/join/") and first != second
        assert "by invitation" in requests.get(server.url + "/", timeout=10).text
        assert "Image 1 of 8" in join(requests.Session(), first, "invited-a").text
        reused = join(requests.Session(), first, "someone-else")
        assert reused.status_code == 403 and "already been used by another rater" in reused.text
        forged = join(requests.Session(), server.url + "/join/not-a-code", "forger")
        assert forged.status_code == 403 and "not one of this study" in forged.text
        assert "Image 1 of 8" in join(requests.Session(), first, "invited-a").text  # the same rater comes back
        assert "Image 1 of 8" in join(requests.Session(), second, "invited-b").text
        raters = {row["rater"] for row in Storage(study / "ratings.sqlite").progress()}
        assert raters == {"invited-a", "invited-b"}  # nothing stored for the refused
    finally:
        server.stop()
    assert survey_main(["invite", str(study), "--n", "0"]) == 2


@needs_chromium
def test_an_invitation_works_once_in_chromium(study):
    from playwright.sync_api import sync_playwright

    server = Server(study, open_registration=False)
    (link,) = Storage(study / "ratings.sqlite").invite(1)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            for rater, expected in (("dr-invited", "Image 1 of 8"), ("dr-other", "already been used")):
                page = browser.new_context().new_page()
                page.goto(f"{server.url}/join/{link}")
                page.get_by_test_id("rater-id").fill(rater)
                page.get_by_test_id("rater-years").fill("3")
                page.get_by_test_id("start").click()
                page.wait_for_selector(f"text={expected}")
                page.screenshot(path=str(study.parent / f"{rater}.png"))
            browser.close()
    finally:
        server.stop()
    assert [r["rater"] for r in Storage(study / "ratings.sqlite").progress()] == ["dr-invited"]


def test_each_rater_field_is_checked_as_declared_and_a_bad_one_stores_nothing(study, server):
    storage = Storage(study / "ratings.sqlite")
    bad = {"role": "nurse"}, {"role": ""}, {"years": "-1"}, {"years": "81"}, {"years": "many"}
    for override in bad:
        s = requests.Session()
        form = {"csrf_token": csrf(s.get(server.url + "/", timeout=10).text), "rater": "r9", "role": "engineer"}
        r = s.post(server.url + "/start", data={**form, "years": "2", **override}, timeout=10)
        assert r.status_code == 400, override
        field = next(f for f in RATER_FIELDS if f.name == next(iter(override)))
        assert re.search(r'role="alert">([^<]+)<', r.text).group(1).startswith(field.label)
    assert storage.progress() == []
    with pytest.raises(sqlite3.IntegrityError):  # the database holds the same rule
        storage.add_rater("r9", {"role": "engineer", "years": 81})


def answer_next(s: requests.Session, url: str, choice="real", rating="3", **override) -> requests.Response:
    page = s.get(url + "/rate", timeout=10).text
    image = re.search(r'name="image" value="([0-9a-f]{16})"', page).group(1)
    data = {"csrf_token": csrf(page), "image": image, "choice": choice, "rating": rating, **override}
    return s.post(url + "/answer", data={k: v for k, v in data.items() if v is not None}, timeout=10)


def test_path_traversal_and_unknown_images_are_not_served(study, server):
    some_id = read_key(study)[0]["id"]
    assert requests.get(f"{server.url}/image/{some_id}", timeout=10).headers["Content-Type"] == "image/png"
    for path in (
        "/image/../private/key.csv",
        "/image/..%2Fprivate%2Fkey.csv",
        "/image/%2e%2e%2fstudy.json",
        "/private/key.csv",
        "/images/" + some_id + ".png",
        "/image/" + "0" * 16,
        "/ratings.sqlite",
        "/image/" + some_id + ".png",
    ):
        r = requests.get(server.url + path, timeout=10)
        assert r.status_code == 404 and "key" not in r.text.lower().replace("keys:", ""), path


def test_admin_and_export_need_the_token(study, server):
    """The admin signs in once with a form (a cookie from then on); scripts send the token in a
    header; a token in the URL, where logs keep it, opens nothing."""
    token = (study / "private" / "admin_token").read_text().strip()
    assert requests.get(server.url + "/export.csv", timeout=10).status_code == 403
    for path in ("/admin", "/export.csv"):
        page = requests.get(server.url + path, params={"token": token}, timeout=10)
        assert "progress" not in page.text and "rater," not in page.text
    assert requests.get(server.url + "/export.csv", headers={"X-Admin-Token": token}, timeout=10).status_code == 200
    admin = requests.Session()
    form = admin.get(server.url + "/admin", timeout=10).text
    assert 'type="password"' in form
    wrong = admin.post(server.url + "/admin", data={"csrf_token": csrf(form), "token": "wrong"}, timeout=10)
    assert wrong.status_code == 403 and "Wrong admin token" in wrong.text
    signed = admin.post(server.url + "/admin", data={"csrf_token": csrf(form), "token": token}, timeout=10)
    assert signed.status_code == 200 and "progress" in signed.text and token not in signed.url
    assert admin.get(server.url + "/export.csv", timeout=10).status_code == 200
    forged = requests.post(server.url + "/admin", data={"token": token}, timeout=10)  # no CSRF token
    assert forged.status_code == 400


def test_csrf_invalid_input_and_duplicates(study, server):
    storage = Storage(study / "ratings.sqlite")
    s = start_session(server.url, "r1")
    bad = [
        dict(csrf_token=None),
        dict(csrf_token="forged"),
        dict(rating="0"),
        dict(rating="6"),
        dict(rating="x"),
        dict(choice=None),
        dict(choice="maybe"),
        dict(image="0123456789abcdef"),
        dict(rating=None),
    ]
    messages = []
    for override in bad:
        r = answer_next(s, server.url, **override)
        assert r.status_code == 400, override
        messages.append(re.search(r'role="alert">([^<]+)<', r.text).group(1))
    assert storage.answers() == []
    assert "CSRF" in messages[0] and "1 to 5" in messages[2] and "Real or Synthetic" in messages[5]
    # Without a session nobody can write, and a rater field in the form is ignored.
    other = requests.Session()
    page = other.get(server.url + "/", timeout=10).text
    r = other.post(
        server.url + "/answer",
        data={
            "csrf_token": csrf(page),
            "image": read_key(study)[0]["id"],
            "choice": "real",
            "rating": "3",
            "rater": "r1",
        },
        timeout=10,
    )
    assert r.status_code == 400 and storage.answers() == []
    # A resubmitted answer replaces the first.
    page = s.get(server.url + "/rate", timeout=10).text
    image = re.search(r'name="image" value="([0-9a-f]{16})"', page).group(1)
    for rating in ("2", "4"):
        s.post(
            server.url + "/answer",
            data={"csrf_token": csrf(page), "image": image, "choice": "synthetic", "rating": rating},
            timeout=10,
        )
    answers = storage.answers()
    assert len(answers) == 1 and answers[0]["rating"] == 4 and answers[0]["rater"] == "r1"


def test_twenty_raters_at_once_lose_nothing(study, server):
    def rater(k: int) -> int:
        s = start_session(server.url, f"rater-{k:02d}")
        for _ in range(8):
            assert answer_next(s, server.url, choice=("real", "synthetic")[k % 2], rating=str(1 + k % 5)).ok
        return k

    with ThreadPoolExecutor(20) as pool:
        assert sorted(pool.map(rater, range(20))) == list(range(20))
    answers = Storage(study / "ratings.sqlite").answers()
    assert len(answers) == 160 and len({(a["rater"], a["image"]) for a in answers}) == 160
    assert all(a["rating"] == 1 + int(a["rater"][-2:]) % 5 for a in answers)


def rate_to_the_end(url: str, rater: str, latencies: list) -> None:
    """One rater through a whole deck over HTTP, retrying through a server that goes away."""
    s = requests.Session()
    while True:
        try:
            page = s.get(url + "/", timeout=10).text
            if "csrf_token" not in page:
                break
            data = {"csrf_token": csrf(page), "rater": rater, "role": "engineer", "years": "3"}
            s.post(url + "/start", data=data, timeout=10)
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    while True:
        try:
            page = s.get(url + "/rate", timeout=10).text
            if "Thank you" in page:
                return
            image = re.search(r'name="image" value="([0-9a-f]{16})"', page).group(1)
            started = time.perf_counter()
            data = {"csrf_token": csrf(page), "image": image, "choice": "real", "rating": "4"}
            s.post(url + "/answer", data=data, timeout=10)
            latencies.append(time.perf_counter() - started)
        except (requests.ConnectionError, AttributeError):
            time.sleep(0.2)  # the server is down or restarting: what a rater's browser would do is retry


@pytest.mark.slow
def test_thirty_raters_sixty_answers_each_through_a_killed_server(tmp_path):
    """30 raters at once through a 60-image deck, real HTTP on waitress; the server is stopped
    (every connection dropped) half-way and started again on its port: every one of the 1,800
    answers is stored once. The 95th percentile of an answer's round trip is printed."""
    for i in range(30):
        write_image(tmp_path / "real" / f"scan_{i:02d}.png", noise_image(i, (40, 60)))
        write_image(
            tmp_path / "sweep" / "0" / "samples" / "epoch=0002" / f"{i:04d}.png", noise_image(100 + i, (32, 32))
        )
    build_deck(tmp_path / "real", [tmp_path / "sweep"], tmp_path / "study", n_real=30, n_fake=30)
    study, latencies = tmp_path / "study", []
    server = Server(study)
    storage = Storage(study / "ratings.sqlite")
    started = time.perf_counter()
    with ThreadPoolExecutor(30) as pool:
        jobs = [pool.submit(rate_to_the_end, server.url, f"load-{k:02d}", latencies) for k in range(30)]
        while len(storage.answers()) < 900:
            time.sleep(0.2)
        server.stop()
        time.sleep(1)
        server = Server(study, server.port)
        for job in jobs:
            job.result(timeout=600)
    server.stop()
    answers = storage.answers()
    assert len(answers) == 1800 and len({(a["rater"], a["image"]) for a in answers}) == 1800
    p95 = float(np.percentile(latencies, 95))
    print(f"1800 answers from 30 raters in {time.perf_counter() - started:.1f} s; p95 answer {1000 * p95:.0f} ms")
    assert p95 < 5


def test_server_restart_mid_study_loses_nothing(study):
    first = Server(study)
    s = start_session(first.url, "returning")
    for _ in range(3):
        answer_next(s, first.url)
    port = first.port
    first.stop()
    second = Server(study, port)  # a new process would read the same files
    try:
        page = s.get(second.url + "/rate", timeout=10).text
        assert "Image 4 of 8" in page
        for _ in range(5):
            assert answer_next(s, second.url).ok
        assert "Thank you" in s.get(second.url + "/rate", timeout=10).text
    finally:
        second.stop()
    assert len(Storage(study / "ratings.sqlite").answers()) == 8


# -- analysis --------------------------------------------------------------------------------


def test_agreement_statistics_match_reference_libraries():
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    rng = np.random.default_rng(0)
    a, b = rng.choice(["real", "synthetic"], 50), rng.choice(["real", "synthetic"], 50)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), rel=1e-12)
    counts = np.stack([rng.multinomial(5, [0.6, 0.4]) for _ in range(30)])
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss(counts), rel=1e-12)
    quality_a, quality_b = rng.integers(1, 6, 60), np.clip(rng.integers(1, 6, 60) + rng.integers(-1, 2, 60), 1, 5)
    for weights in ("linear", "quadratic"):
        expected = cohen_kappa_score(quality_a, quality_b, weights=weights)
        assert weighted_kappa(quality_a, quality_b, weights) == pytest.approx(expected, rel=1e-12)
    # Shrout and Fleiss (1979), Table 2: 6 targets, 4 judges; ICC(2,1) = 0.29 as published
    table = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert round(icc_2_1(table), 2) == 0.29


def test_metrics_against_ratings_per_set_and_role(tmp_path):
    """One point per synthetic set (n = sets, not images), per role; the same numbers through
    `survey analyze` and `report --ratings`, checked against scipy."""
    from fetal_dcgan.report.ratings import metrics_vs_ratings

    real = tmp_path / "real"
    for i in range(6):
        write_image(real / f"scan_{i:02d}.png", noise_image(i, (32, 32)))
    for run in ("0", "1", "2"):
        for epoch in (2, 4):
            for i in range(4):
                write_image(
                    tmp_path / "sweep" / run / "samples" / f"epoch={epoch:04d}" / f"{i:04d}.png",
                    noise_image(1000 * int(run) + 10 * epoch + i, (32, 32)),
                )
    study = tmp_path / "study"
    assert (
        survey_main(
            [
                "build",
                "--real",
                str(real),
                "--fake",
                str(tmp_path / "sweep"),
                "--n-real",
                "4",
                "--n-fake",
                "24",
                "--out",
                str(study),
            ]
        )
        == 0
    )
    storage, key = Storage(study / "ratings.sqlite"), read_key(study)
    rng = np.random.default_rng(1)
    for rater, role in (("x", "clinician"), ("y", "engineer"), ("z", "engineer")):
        storage.add_rater(rater, {"role": role, "years": 5})
        for row in key:
            storage.save_answer(rater, row["id"], rng.choice(["real", "synthetic"]), int(rng.integers(1, 6)), 1.0)
    sets = pd.DataFrame([{"run": r, "epoch": e} for r in ("0", "1", "2") for e in (2, 4)])
    results = sets.assign(fid=rng.random(6) * 100, lbp_l1=rng.random(6))
    results.to_csv(tmp_path / "results.csv", index=False)
    assert (
        survey_main(
            [
                "analyze",
                str(study),
                "--metrics",
                str(tmp_path / "results.csv"),
                "--log-fit",
                "--out",
                str(tmp_path / "analysis"),
            ]
        )
        == 0
    )
    relations = pd.read_csv(tmp_path / "analysis" / "metrics_vs_ratings.csv")
    assert set(relations.role) == {"all", "clinician", "engineer"}
    answers = pd.DataFrame(storage.answers()).merge(pd.DataFrame(key), left_on="image", right_on="id")
    clinician = answers[(answers.truth == "synthetic") & (answers.role == "clinician")]
    means = (
        clinician.assign(epoch=clinician.epoch.astype(int))
        .groupby(["run", "epoch"], as_index=False)["rating"]
        .mean()
        .merge(results, on=["run", "epoch"])
    )
    row = relations[(relations.role == "clinician") & (relations.metric == "fid")].iloc[0]
    expected = stats.pearsonr(means["rating"], means["fid"])
    assert row.n_sets == 6 and row.pearson_r == pytest.approx(expected.statistic)
    assert row.pearson_p == pytest.approx(run_permutation_p(means["rating"], means["fid"], means["run"]))
    # 2 sets from each of 3 runs: the intervals resample runs and the p-values permute them
    from fetal_dcgan.report.ratings import clustered_ci

    ci = clustered_ci(means["rating"].to_numpy(), means["fid"].to_numpy(), means["run"].to_numpy(), 2000, 0)
    assert row.n_runs == 3 and (row.pearson_ci_low, row.pearson_ci_high) == pytest.approx(ci["pearson"])
    assert (row.spearman_ci_low, row.spearman_ci_high) == pytest.approx(ci["spearman"]) and "permute runs" in row.note
    assert row.spearman_rho == pytest.approx(stats.spearmanr(means["rating"], means["fid"]).statistic)
    assert row.spearman_ci_low <= row.spearman_rho <= row.spearman_ci_high
    slope, intercept = np.polyfit(np.log(means["rating"]), means["fid"], 1)
    assert row.log_a == pytest.approx(slope) and row.log_b == pytest.approx(intercept)
    assert (tmp_path / "analysis" / "metrics_vs_ratings.png").is_file()
    ratings = pd.read_csv(tmp_path / "analysis" / "ratings.csv")  # the report's --ratings format
    assert {"run", "epoch", "image", "rating", "role", "called_real"} <= set(ratings) and len(ratings) == 72
    same, _ = metrics_vs_ratings(results, ratings, ["fid", "lbp_l1"], "clinician", log_fit=True)
    assert same.set_index("metric").loc["fid", "pearson_r"] == pytest.approx(row.pearson_r)


def test_analyze_without_answers_says_so(study, capsys):
    assert survey_main(["analyze", str(study)]) == 2
    assert "No answers" in capsys.readouterr().err
