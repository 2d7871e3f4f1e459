"""Where a rating study keeps each thing; the builder, the web app and the analysis all
find their files through ``StudyLayout``.

    images/<id>.png      what raters see
    study.json           public facts: number of images, created, seed
    ratings.sqlite       raters and answers
    private/key.csv      the answer key (never served)
    private/secret_key   signs rater cookies (kept, so a restart keeps raters' sessions)
    private/admin_token  unlocks the admin page and the export
    analysis/            what ``survey analyze`` writes
"""

from __future__ import annotations

from pathlib import Path

from fetal_dcgan.errors import UserError


class StudyLayout:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def images(self) -> Path:
        return self.root / "images"

    def image(self, image_id: str) -> Path:
        return self.images / f"{image_id}.png"

    @property
    def facts(self) -> Path:
        return self.root / "study.json"

    @property
    def ratings(self) -> Path:
        return self.root / "ratings.sqlite"

    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def key(self) -> Path:
        return self.private / "key.csv"

    @property
    def secret_key(self) -> Path:
        return self.private / "secret_key"

    @property
    def admin_token(self) -> Path:
        return self.private / "admin_token"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    def check(self) -> "StudyLayout":
        """This layout, or a UserError when the folder is not a built study."""
        if not self.key.is_file():
            raise UserError(
                f"{self.root} is not a study folder: build one with `python -m fetal_dcgan.survey build "
                "--real DIR --fake DIR --out DIR`."
            )
        return self
