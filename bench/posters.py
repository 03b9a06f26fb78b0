"""Poster batches: a county's deputy posters (2,435 pages) against Pillow encoding 100 pages without layout.

- **Data**: a temporary SQLite database migrated with ``flask_migrate.upgrade``: one county, 80
  stations with reception days, hours and phones, 2,435 serving deputies (宁乡's count) with
  levels and codes, every other one with a photo (a 600 × 800 JPEG of noise, as incompressible
  as a real face, so the size per page is an upper bound).
- **Batch**: ``posters.pdf_chunks(posters.deputy_posters(ids))``, the generator that
  ``GET /posters/region/<code>.pdf`` streams and the batch worker writes; each chunk is counted
  and dropped, as a response does. Run for the first 100 deputies and for all of them.
- **Baseline**: per deputy, a blank A4 RGB page at 300 dpi with the deputy's code pasted (``qr_png`` at
  the poster's code size), PNG-encoded into a PDF by the same writer: what a raster page costs at least.
- **Memory**: each run in a fresh child process (``python -m bench.posters --child …``) that reports
  its own peak RSS (``ru_maxrss``): it must not grow with the batch.
- **Printed**: time per page, size per page (the whole file over its pages: fonts and trailer
  included) and peak RSS of each run. **Targets** (issues 5 and 16): batch ≤ 2× the baseline's
  time per page; at most 100 KB a page; peak RSS < 300 MB at any batch size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COUNTY_DEPUTIES = 2435  # 宁乡: 80 stations, 2,435 deputies
COUNTY_STATIONS = 80
SMALL_BATCH = 100
TARGET_RATIO = 2.0
TARGET_PEAK_MB = 300
TARGET_PAGE_KB = 100
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "秀英建华国强明丽军平芳红伟敏静海燕志刚晓东玉兰文斌春梅桂香德胜永福"
LONG_NAMES = ["阿卜杜热合曼·买买提依明·艾则孜", "欧阳秀英", "热依拉·阿不都克热木"]


def make_app(db_path: Path):
    """The application on the bench database, with the public base URL the posters print."""
    from backend import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_path}", "PUBLIC_BASE_URL": "https://msl.example.cn"})


def noise_photo(rng: random.Random) -> bytes:
    """A portrait-shaped JPEG of noise over a gradient."""
    from PIL import Image

    size = (600, 800)
    noise = Image.effect_noise(size, 40).convert("RGB")
    tint = Image.new("RGB", size, (rng.randrange(80, 200), rng.randrange(80, 200), rng.randrange(80, 200)))
    out = io.BytesIO()
    Image.blend(noise, tint, 0.6).save(out, format="JPEG", quality=85)
    return out.getvalue()


def build_database(db_path: Path, deputies: int) -> None:
    """Migrate a fresh database and fill it with one county of ``deputies`` deputies."""
    from datetime import date

    from flask_migrate import upgrade

    from backend.extensions import db
    from backend.items.photo_store import DEPUTY_PREFIX, store_jpeg
    from backend.models import (
        CongressLevel,
        Deputy,
        DeputyLevel,
        ReceptionRule,
        ReceptionRuleKind,
        Region,
        RegionLevel,
        Station,
    )
    from backend.qr.codes import issue_code

    rng = random.Random(5)
    app = make_app(db_path)
    with app.app_context():
        upgrade()
        province = Region(code="430000", name="湖南省", level=RegionLevel.PROVINCE)
        city = Region(code="430200", name="株洲市", level=RegionLevel.CITY, parent=province)
        county = Region(code="430225", name="炎陵县", level=RegionLevel.COUNTY, parent=city)
        db.session.add_all([province, city, county])
        stations = []
        for number in range(COUNTY_STATIONS):
            station = Station(
                name=f"第{number + 1}人大代表联络站",
                region=county,
                address=f"霞阳镇炎帝大道{number + 1}号",
                contact_phone=f"0731-262{number:05d}",
                reception_hours="上午9:00—11:30",
            )
            station.reception_rules = [
                ReceptionRule(kind=ReceptionRuleKind.WEEKLY, day=number % 7 + 1),
                ReceptionRule(kind=ReceptionRuleKind.XUN, day=number % 10),
            ]
            db.session.add(station)
            db.session.flush()
            issue_code(station)
            stations.append(station)
        photo = noise_photo(rng)
        for number in range(deputies):
            if number % 10 == 0:
                name = LONG_NAMES[number // 10 % len(LONG_NAMES)]
            else:
                name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            deputy = Deputy(
                name=name,
                station=stations[number % len(stations)],
                constituency=f"霞阳镇第{number % 12 + 1}选区",
                term_start=date(2021, 12, 1),
                term_end=date(2026, 11, 30),
            )
            deputy.levels = [DeputyLevel(level=CongressLevel.COUNTY)]
            if number % 3 == 0:
                deputy.levels.append(DeputyLevel(level=CongressLevel.TOWNSHIP))
            if number % 2 == 0:
                deputy.photo_key = store_jpeg(photo, DEPUTY_PREFIX)
                deputy.photo_version = 1
            db.session.add(deputy)
            db.session.flush()
            issue_code(deputy)
        db.session.commit()
        db.engine.dispose()


def run_batch(db_path: Path, count: int) -> dict:
    """Stream the PDF of the first ``count`` deputies of the county; time, size and chunks."""
    from backend.extensions import db
    from backend.models import Region
    from backend.qr import posters

    app = make_app(db_path)
    with app.app_context():
        region = db.session.query(Region).filter_by(code="430225").one()
        deputy_ids = posters.region_deputy_ids(region)[:count]
        next(iter(posters.deputy_posters(deputy_ids[:1])))  # fonts opened, template drawn: as in a warm worker
        started = time.perf_counter()
        size = chunks = 0
        for chunk in posters.pdf_chunks(posters.deputy_posters(deputy_ids), title="bench"):
            size += len(chunk)
            chunks += 1
        seconds = time.perf_counter() - started
    return {"pages": len(deputy_ids), "seconds": seconds, "bytes": size, "chunks": chunks}


def run_baseline(db_path: Path, count: int) -> dict:
    """Pillow without layout: per deputy a blank A4 page with the code pasted, PNG-encoded into the same PDF."""
    from PIL import Image

    from backend.extensions import db
    from backend.models import Deputy, Region
    from backend.qr import posters
    from backend.qr.codes import code_url, current_code
    from backend.qr.pdf import Content, png_image, stream_pdf
    from backend.qr.render import qr_png

    app = make_app(db_path)
    with app.app_context():
        region = db.session.query(Region).filter_by(code="430225").one()
        deputy_ids = posters.region_deputy_ids(region)[:count]
        urls = [code_url(current_code(db.session.get(Deputy, deputy_id)).slug) for deputy_id in deputy_ids]
        size_px = (posters.px(posters.A4_MM[0]), posters.px(posters.A4_MM[1]))
        qr_size = posters.px(110)
        width_pt, height_pt = 595.28, 841.89

        def pages():
            for url in urls:
                page = Image.new("RGB", size_px, "white")
                with Image.open(io.BytesIO(qr_png(url, qr_size))) as symbol:
                    page.paste(symbol.convert("RGB"), (posters.px(50), posters.px(129)))
                out = io.BytesIO()
                page.save(out, format="PNG", compress_level=1, compress_type=3)  # zlib's run-length strategy
                content = Content(width_pt, height_pt, width_pt / size_px[0])
                content.image(png_image(out.getvalue()), 0, 0, *size_px)
                yield content.page()

        started = time.perf_counter()
        size = sum(len(chunk) for chunk in stream_pdf(pages(), "baseline"))
        seconds = time.perf_counter() - started
    return {"pages": len(urls), "seconds": seconds, "bytes": size}


def child(kind: str, db_path: Path, count: int) -> None:
    """Run one measurement in this process and print it as JSON with this process's peak RSS."""
    result = (run_batch if kind == "batch" else run_baseline)(db_path, count)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


def measure(kind: str, db_path: Path, count: int) -> dict:
    """One measurement in a fresh child process."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.posters", "--child", kind, "--db", str(db_path), "--count", str(count)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{kind} {count} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(out: Callable[[str], None] = print, deputies: int = COUNTY_DEPUTIES) -> int:
    """Run the poster bench; non-zero when a run failed (a target missed is printed, not failed on)."""
    out("")
    out(f"== posters: a county's batch PDF ({deputies} deputy posters) vs Pillow encoding pages without layout")
    sizes = sorted({min(SMALL_BATCH, deputies), deputies})
    with tempfile.TemporaryDirectory(prefix="msl-bench-posters-") as tmp:
        db_path = Path(tmp) / "bench.sqlite3"
        try:
            build_database(db_path, deputies)
            runs = {count: measure("batch", db_path, count) for count in sizes}
            baseline = measure("baseline", db_path, sizes[0])
        except Exception as exc:
            out(f"   FAILED: {exc}")
            return 1

    def line(label: str, run: dict) -> str:
        return (
            f"   {label} {run['pages']:>5} pages: {run['seconds']:7.1f} s ({run['seconds'] / run['pages'] * 1000:4.0f} ms/page), "
            f"{run['bytes'] / 1e6:6.1f} MB PDF = {run['bytes'] / run['pages'] / 1000:5.1f} KB/page, "
            f"peak RSS {run['peak_mb']:4.0f} MB"
        )

    for run in runs.values():
        out(line("batch   ", run))
    out(line("baseline", baseline))
    small, full = runs[sizes[0]], runs[sizes[-1]]
    ratio = (small["seconds"] / small["pages"]) / (baseline["seconds"] / baseline["pages"])
    page_kb = max(run["bytes"] / run["pages"] / 1000 for run in runs.values())
    peak = max(run["peak_mb"] for run in runs.values())
    growth = full["peak_mb"] - small["peak_mb"]
    out(
        f"   time per page batch/baseline {ratio:.2f} (target ≤ {TARGET_RATIO:.0f}: {'met' if ratio <= TARGET_RATIO else 'MISSED'}); "
        f"size per page {page_kb:.1f} KB (target ≤ {TARGET_PAGE_KB}: {'met' if page_kb <= TARGET_PAGE_KB else 'MISSED'}); "
        f"peak {peak:.0f} MB, {growth:+.0f} MB from {small['pages']} to {full['pages']} pages "
        f"(target < {TARGET_PEAK_MB}: {'met' if peak < TARGET_PEAK_MB else 'MISSED'})"
    )
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=("batch", "baseline"))
    parser.add_argument("--db", type=Path)
    parser.add_argument("--count", type=int, default=SMALL_BATCH)
    parser.add_argument("--deputies", type=int, default=COUNTY_DEPUTIES, help="the county's size (default 2,435)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(None)
    if args.child:
        child(args.child, args.db, args.count)
        sys.exit(0)
    sys.exit(main(deputies=args.deputies))
