"""Poster batch jobs: queued on a page, rendered by the worker into a file, followed and downloaded by staff in scope.

The PDFs are read back by poppler (pdfinfo, pdftoppm) and their codes by zxing-cpp; workers run
in this process (``worker.claim_batch`` / ``render``) or as real ``flask posters run --once``
subprocesses on the test's database.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from backend.batches import worker
from backend.extensions import db
from backend.models import AuditEntry, PosterBatch, PosterBatchStatus, utcnow
from backend.qr import posters
from tests.factories import admin_world
from tests.helpers import audit_count, login, post_form, start_flask
from tests.test_posters import A4_POINTS, A5_POINTS, decode, pdf_info, pdf_page_image, url_of

pytestmark = pytest.mark.usefixtures("cjk_font")  # posters need the CJK font


@pytest.fixture
def world(app, tmp_path):
    """The admin world (stations A, B in the county, T in its township, S in a sibling county), files in tmp_path."""
    app.instance_path = str(tmp_path / "instance")
    os.makedirs(app.instance_path, exist_ok=True)
    return admin_world()


def folder_files() -> list[str]:
    """The names of every file in the batch folder."""
    return sorted(path.name for path in worker.batch_folder().iterdir())


def queue(client, kind: str, page: str = "/staff/", **scope):
    """Press a "生成批量海报" button: POST the form with the CSRF token of ``page``."""
    return post_form(client, "/admin/poster-batches", {"kind": kind, **scope}, page=page)


def queued_batch_id(response) -> int:
    assert response.status_code == 303, response.text
    match = re.search(r"/admin/poster-batches/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def batch_row(batch_id: int) -> PosterBatch:
    """The batch as committed (the test's session forgets what it had read)."""
    db.session.rollback()
    return db.session.get(PosterBatch, batch_id)


# --- the whole way: queued, rendered, followed, downloaded -----------------------------------


def test_a_station_batch_is_queued_rendered_by_the_worker_and_downloaded(app, world, poppler, tmp_path):
    client = login(app, "admin_a")
    station_page = f"/admin/stations/{world.station_a.id}"
    html = client.get(station_page).text
    assert 'id="station-batch"' in html and "生成批量海报" in html and 'action="/admin/poster-batches"' in html
    requested = audit_count("poster_batch_requested")

    batch_id = queued_batch_id(queue(client, "station", station_id=world.station_a.id, page=station_page))
    assert audit_count("poster_batch_requested") == requested + 1
    page = client.get(f"/admin/poster-batches/{batch_id}")
    assert page.status_code == 200
    assert "排队等候生成（共 3 页）" in page.text
    assert 'id="batch-reload"' in page.text  # without JavaScript: reload by hand
    assert f'data-status-url="/admin/poster-batches/{batch_id}/status"' in page.text
    status = client.get(f"/admin/poster-batches/{batch_id}/status").json
    assert status["status"] == "queued" and (status["pages_done"], status["pages_total"]) == (0, 3)
    assert status["download_url"] is None
    early = client.get(f"/admin/poster-batches/{batch_id}.pdf")
    assert early.status_code == 409 and "还在生成中" in early.text

    assert worker.run_once() == PosterBatchStatus.DONE
    assert worker.run_once() is None  # nothing else waiting

    status = client.get(f"/admin/poster-batches/{batch_id}/status").json
    assert status["status"] == "done"
    assert status["pages_done"] == status["pages_total"] == 3
    assert status["text"] == "已完成：共 3 页" and status["is_finished"]
    page = client.get(f"/admin/poster-batches/{batch_id}").text
    assert 'id="batch-download"' in page and "下载PDF（3页）" in page and "文件保留到" in page
    assert 'id="batch-reload"' not in page

    download = client.get(status["download_url"])
    assert download.status_code == 200
    assert download.mimetype == "application/pdf"
    assert download.headers["Cache-Control"] == "no-store"
    disposition = download.headers["Content-Disposition"]
    assert f'filename="station-{world.station_a.id}-posters.pdf"' in disposition
    assert "filename*=UTF-8''%E9%9C%9E%E9%98%B3%E9%95%87" in disposition  # 霞阳镇…-二维码海报.pdf
    data = download.data
    download.close()
    assert pdf_info(data, tmp_path) == {"pages": 3, "sizes": [A4_POINTS] * 3}
    first = set(decode(pdf_page_image(data, tmp_path, page=1)))
    assert {url_of(world.station_a), url_of(world.d1), url_of(world.d2)} <= first
    assert decode(pdf_page_image(data, tmp_path, page=2)) == [url_of(world.d1)]

    # The station page lists it, done, for whoever comes back to it.
    listed = client.get(station_page).text
    assert f'href="/admin/poster-batches/{batch_id}"' in listed and "已完成 · 3页" in listed
    assert folder_files() == [Path(batch_row(batch_id).file_path).name]


def test_a_county_batch_by_the_supervisor_through_flask_posters_run(app, world, runner, poppler, tmp_path):
    client = login(app, "sup_county")
    index = client.get("/admin/").text
    assert 'id="region-batch"' in index and "共4页" in index
    batch_id = queued_batch_id(queue(client, "region", region="430225"))

    result = runner.invoke(args=["posters", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 batch(es) rendered" in result.output

    status = client.get(f"/admin/poster-batches/{batch_id}/status").json
    assert status["status"] == "done" and status["pages_done"] == status["pages_total"] == 4
    download = client.get(status["download_url"])
    data = download.data
    download.close()
    assert 'filename="region-430225-posters.pdf"' in download.headers["Content-Disposition"]
    # d1, d2 (A), d3 (B), d5 (T, in the township): a page each, in station order.
    assert pdf_info(data, tmp_path) == {"pages": 4, "sizes": [A4_POINTS] * 4}
    assert decode(pdf_page_image(data, tmp_path, page=1)) == [url_of(world.d1)]
    assert decode(pdf_page_image(data, tmp_path, page=4)) == [url_of(world.d5)]


def test_table_cards_are_a_batch_too(app, world, poppler, tmp_path):
    client = login(app, "admin_a")
    batch_id = queued_batch_id(queue(client, "cards", station_id=world.station_a.id))
    assert worker.run_once() == PosterBatchStatus.DONE
    download = client.get(f"/admin/poster-batches/{batch_id}.pdf")
    data = download.data
    download.close()
    assert pdf_info(data, tmp_path) == {"pages": 2, "sizes": [A5_POINTS] * 2}
    page = pdf_page_image(data, tmp_path, page=1)
    assert decode(page.crop((0, page.height // 2, page.width, page.height))) == [url_of(world.d1)]


def test_asking_again_while_it_runs_shows_the_same_batch(app, world):
    client = login(app, "admin_a")
    first = queued_batch_id(queue(client, "station", station_id=world.station_a.id))
    again = queue(client, "station", station_id=world.station_a.id)
    assert queued_batch_id(again) == first
    assert "同一批海报已在生成中" in client.get(again.headers["Location"]).text
    assert db.session.scalar(select(PosterBatch.id).where(PosterBatch.id != first)) is None
    # The cards of the same station are another batch.
    assert queued_batch_id(queue(client, "cards", station_id=world.station_a.id)) != first


# --- the direct addresses: small batches stream, long ones are sent to a job ---------------------------


def test_a_batch_too_long_to_stream_is_sent_to_the_job_page(app, world):
    app.config["POSTER_STREAM_MAX_PAGES"] = 2
    client = login(app, "admin_a")
    response = client.get(f"/posters/station/{world.station_a.id}.pdf")  # 3 pages
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == f"/admin/poster-batches/new?kind=station&station_id={world.station_a.id}"
    offer = client.get(location)
    assert offer.status_code == 200
    assert "这批共3页，超过直接下载的上限（2页）" in offer.text
    assert 'name="kind" value="station"' in offer.text and 'id="batch-create"' in offer.text
    station_page = client.get(f"/admin/stations/{world.station_a.id}").text
    assert 'id="station-direct"' not in station_page  # no direct link that would be cut off
    assert 'id="cards-direct"' in station_page and "共2页" in station_page
    cards = client.get(f"/posters/station/{world.station_a.id}/cards.pdf")  # 2 pages: streamed as before
    assert cards.status_code == 200 and cards.mimetype == "application/pdf" and cards.is_streamed
    cards.close()

    supervisor = login(app, "sup_county")
    county = supervisor.get("/posters/region/430225.pdf")
    assert county.status_code == 303
    assert county.headers["Location"] == "/admin/poster-batches/new?kind=region&region=430225"
    # Out of scope stays 404 and an audit row, long or not.
    denied = audit_count("admin_access_denied")
    assert login(app, "sup_far").get("/posters/region/430225.pdf").status_code == 404
    assert audit_count("admin_access_denied") == denied + 1


# --- scope --------------------------------------------------------------------------------------


def test_out_of_scope_is_404_with_an_audit_row_everywhere(app, world):
    owner = login(app, "admin_a")
    batch_id = queued_batch_id(queue(owner, "station", station_id=world.station_a.id))
    worker.run_once()

    other_admin = login(app, "admin_b")
    for path in (
        f"/admin/poster-batches/{batch_id}",
        f"/admin/poster-batches/{batch_id}/status",
        f"/admin/poster-batches/{batch_id}.pdf",
        f"/admin/poster-batches/new?kind=station&station_id={world.station_a.id}",
    ):
        denied = audit_count("admin_access_denied")
        response = other_admin.get(path)
        assert response.status_code == 404, path
        assert "%PDF" not in response.text
        assert audit_count("admin_access_denied") == denied + 1, path

    batches = db.session.scalar(select(func.count()).select_from(PosterBatch))
    for username, kind, scope in (
        ("admin_b", "station", {"station_id": world.station_a.id}),
        ("admin_b", "cards", {"station_id": world.station_a.id}),
        ("sup_far", "region", {"region": "430225"}),
        ("sup_township", "region", {"region": "430225"}),  # the county above their township
        ("sup_sibling", "station", {"station_id": world.station_a.id}),
    ):
        denied = audit_count("admin_access_denied")
        response = queue(login(app, username), kind, **scope)
        assert response.status_code == 404, (username, kind)
        assert audit_count("admin_access_denied") == denied + 1
        entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry.data["method"] == "POST"
    assert db.session.scalar(select(func.count()).select_from(PosterBatch)) == batches

    # The county's supervisor may follow and download a station's batch of their county.
    supervisor = login(app, "sup_county")
    assert supervisor.get(f"/admin/poster-batches/{batch_id}/status").json["status"] == "done"
    download = supervisor.get(f"/admin/poster-batches/{batch_id}.pdf")
    assert download.status_code == 200
    download.close()

    # A deputy has no administration pages at all.
    forbidden = audit_count("forbidden")
    assert login(app, "deputy_d1").get(f"/admin/poster-batches/{batch_id}").status_code == 404
    assert audit_count("forbidden") == forbidden + 1


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"kind": "poster", "station_id": "1"}, 400, "请选择要生成的内容"),
        ({"station_id": "1"}, 400, "请选择要生成的内容"),
        ({"kind": "station"}, 400, "没有指明要打印哪个联络站"),
        ({"kind": "station", "station_id": "abc"}, 400, "没有指明要打印哪个联络站"),
        ({"kind": "cards", "station_id": "99999999999"}, 400, "没有指明要打印哪个联络站"),
        ({"kind": "station", "station_id": "-3"}, 400, "没有指明要打印哪个联络站"),
        ({"kind": "station", "station_id": "2147483000"}, 404, "找不到该页面或记录"),
        ({"kind": "region", "region": ""}, 400, "没有指明要打印哪个地区"),
        ({"kind": "region", "region": "<script>"}, 400, "没有指明要打印哪个地区"),
        ({"kind": "region", "region": "999999"}, 404, "找不到该页面或记录"),
    ],
)
def test_bad_requests_are_clear_errors_and_queue_nothing(app, world, form, status, message):
    client = login(app, "sup_county")
    response = post_form(client, "/admin/poster-batches", form)
    assert response.status_code == status
    assert message in response.text
    assert db.session.scalar(select(PosterBatch.id)) is None


def test_wrong_method_missing_csrf_unknown_batch_and_nothing_to_print(app, world, create_station):
    client = login(app, "sup_county")
    got = client.get("/admin/poster-batches")
    assert got.status_code == 405 and "不支持该请求方式" in got.text
    no_token = client.post("/admin/poster-batches", data={"kind": "station", "station_id": world.station_a.id})
    assert no_token.status_code == 400 and "页面已过期或来源无法确认" in no_token.text
    for path in ("/admin/poster-batches/999999", "/admin/poster-batches/999999/status", "/admin/poster-batches/9.pdf"):
        assert client.get(path).status_code == 404, path
    assert client.get("/admin/poster-batches/new?kind=bad").status_code == 400

    empty = create_station(name="无代表联络站", region=world.county)
    cards = queue(client, "cards", station_id=empty.id)
    assert cards.status_code == 404 and "无代表联络站暂无在任代表，没有可打印的桌牌。" in cards.text
    empty.is_active = False
    db.session.commit()
    closed = queue(client, "station", station_id=empty.id)
    assert closed.status_code == 404 and "已停用" in closed.text
    assert db.session.scalar(select(PosterBatch.id)) is None


# --- leases -----------------------------------------------------------------------------------------


def test_a_leased_batch_is_not_taken_by_a_second_worker_and_a_stale_holder_writes_nothing(app, world):
    client = login(app, "admin_a")
    batch_id = queued_batch_id(queue(client, "station", station_id=world.station_a.id))
    first = worker.claim_batch()
    assert first is not None and first.id == batch_id and first.token == 1
    assert worker.claim_batch() is None  # the lease holds: a second worker finds nothing to do
    batch = batch_row(batch_id)
    assert batch.status == PosterBatchStatus.RUNNING and batch.lease_expires_at > utcnow()

    # The first worker stalls past its lease; a second takes the batch over with a new token.
    db.session.execute(
        update(PosterBatch).where(PosterBatch.id == batch_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    second = worker.claim_batch()
    assert second is not None and second.id == batch_id and second.token == 2
    with pytest.raises(worker.LeaseLost):
        worker.record_progress(first, 1, 3)
    assert worker.render(first) is None  # stops at its first write, leaves no file
    assert folder_files() == []
    assert worker.render(second) == PosterBatchStatus.DONE
    batch = batch_row(batch_id)
    assert (batch.status, batch.attempts, batch.pages_done) == (PosterBatchStatus.DONE, 2, 3)
    assert folder_files() == [Path(batch.file_path).name]


def test_a_worker_asked_to_stop_puts_the_batch_back_in_the_queue(app, world):
    app.config["POSTER_BATCH_PROGRESS_PAGES"] = 1
    client = login(app, "admin_a")
    batch_id = queued_batch_id(queue(client, "station", station_id=world.station_a.id))
    stop = threading.Event()
    stop.set()  # SIGTERM arrived: the worker stops after the page it is on
    assert worker.render(worker.claim_batch(), stop) is None
    batch = batch_row(batch_id)
    assert (batch.status, batch.pages_done, batch.lease_expires_at) == (PosterBatchStatus.QUEUED, 0, None)
    assert folder_files() == []
    assert worker.run_once() == PosterBatchStatus.DONE  # the next worker renders it whole
    assert batch_row(batch_id).pages_done == 3


def test_a_batch_whose_worker_keeps_dying_is_failed_not_retried_forever(app, world):
    app.config["POSTER_BATCH_MAX_ATTEMPTS"] = 2
    client = login(app, "admin_a")
    batch_id = queued_batch_id(queue(client, "station", station_id=world.station_a.id))
    for _ in range(2):
        assert worker.claim_batch() is not None  # …and the worker dies: the lease runs out
        db.session.execute(
            update(PosterBatch).where(PosterBatch.id == batch_id).values(lease_expires_at=utcnow() - timedelta(1))
        )
        db.session.commit()
    assert worker.claim_batch() is None
    batch = batch_row(batch_id)
    assert batch.status == PosterBatchStatus.FAILED and "多次中断" in batch.error
    assert "多次中断" in client.get(f"/admin/poster-batches/{batch_id}").text


def test_two_worker_processes_render_each_batch_once(app, world, tmp_path, poppler):
    clients = {"admin_a": login(app, "admin_a"), "admin_b": login(app, "admin_b"), "sup": login(app, "sup_county")}
    ids = [
        queued_batch_id(queue(clients["admin_a"], "station", station_id=world.station_a.id)),
        queued_batch_id(queue(clients["admin_a"], "cards", station_id=world.station_a.id)),
        queued_batch_id(queue(clients["admin_b"], "station", station_id=world.station_b.id)),
        queued_batch_id(queue(clients["sup"], "station", station_id=world.station_t.id)),
        queued_batch_id(queue(clients["sup"], "region", region="430225100")),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTER_")}
    env.update(
        FLASK_APP="backend",
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        INSTANCE_PATH=app.instance_path,
        PUBLIC_BASE_URL=app.config["PUBLIC_BASE_URL"],
        SECRET_KEY="worker-test",
        PYTHONUNBUFFERED="1",
    )
    db.session.rollback()  # the test's own session holds no SQLite lock while the workers run
    logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
    processes = [start_flask(env, log, "posters", "run", "--once") for log in logs]
    for process in processes:
        assert process.wait(timeout=180) == 0, "\n".join(log.read_text() for log in logs)
    rendered = [int(re.search(r"(\d+) batch", log.read_text()).group(1)) for log in logs]
    assert sum(rendered) == len(ids), [log.read_text() for log in logs]
    rows = [batch_row(batch_id) for batch_id in ids]
    assert [(row.status, row.attempts) for row in rows] == [(PosterBatchStatus.DONE, 1)] * len(ids)
    assert sorted(folder_files()) == sorted(Path(row.file_path).name for row in rows)
    download = clients["sup"].get(f"/admin/poster-batches/{ids[-1]}.pdf")
    data = download.data
    download.close()
    assert pdf_info(data, tmp_path)["pages"] == 1
    assert decode(pdf_page_image(data, tmp_path, page=1)) == [url_of(world.d5)]


# --- failures -----------------------------------------------------------------------------------------


def test_a_render_that_fails_midway_is_failed_with_a_message_and_serves_no_partial_file(app, world, monkeypatch):
    app.config["POSTER_BATCH_PROGRESS_PAGES"] = 1
    client = login(app, "sup_county")
    batch_id = queued_batch_id(queue(client, "region", region="430225"))
    seen = {}
    real = posters.deputy_poster

    def fails_on_the_second_page(sheet):
        calls = seen.setdefault("calls", 0) + 1
        seen["calls"] = calls
        if calls < 2:
            return real(sheet)
        # What another process sees at this moment: the first page committed as progress, and the
        # pages written so far in the temporary file only.
        with db.engine.connect() as other:
            seen["pages_done"] = other.execute(
                text("SELECT pages_done FROM poster_batches WHERE id = :id"), {"id": batch_id}
            ).scalar_one()
        seen["files"] = {path.name: path.read_bytes() for path in worker.batch_folder().iterdir()}
        raise RuntimeError("the renderer broke")  # a fault nothing else here can cause

    monkeypatch.setattr(posters, "deputy_poster", fails_on_the_second_page)
    assert worker.run_once() == PosterBatchStatus.FAILED

    assert seen["pages_done"] == 1
    [(partial, written)] = seen["files"].items()
    assert partial.endswith(".pdf.part")
    assert len(re.findall(rb"/Type /Page\b", written)) == 1  # the first page, written as it was rendered
    assert folder_files() == []  # the partial file is gone

    batch = batch_row(batch_id)
    assert batch.status == PosterBatchStatus.FAILED and batch.file_path == "" and batch.lease_expires_at is None
    assert batch.error == worker.UNEXPECTED
    status = client.get(f"/admin/poster-batches/{batch_id}/status").json
    assert status["status"] == "failed" and status["error"] == worker.UNEXPECTED and status["download_url"] is None
    assert status["is_finished"] and status["text"] == "生成失败（已生成 1 / 4 页）"
    page = client.get(f"/admin/poster-batches/{batch_id}").text
    assert "生成失败：生成时服务器出错" in page and 'id="batch-again"' in page and 'id="batch-download"' not in page
    download = client.get(f"/admin/poster-batches/{batch_id}.pdf")
    assert download.status_code == 409 and "生成失败，没有可下载的文件" in download.text

    # Asking again queues a new batch, which now renders.
    monkeypatch.setattr(posters, "deputy_poster", real)
    again = queued_batch_id(queue(client, "region", region="430225"))
    assert again != batch_id and worker.run_once() == PosterBatchStatus.DONE


def test_a_station_closed_after_queueing_fails_the_batch_saying_why(app, world):
    client = login(app, "admin_a")
    batch_id = queued_batch_id(queue(client, "station", station_id=world.station_a.id))
    world.station_a.is_active = False
    db.session.commit()
    assert worker.run_once() == PosterBatchStatus.FAILED
    batch = batch_row(batch_id)
    assert batch.error == "霞阳镇人大代表联络站已停用，不再制作联络站海报和桌牌。"
    assert folder_files() == []
    assert batch.error in client.get(f"/admin/poster-batches/{batch_id}/status").json["error"]


# --- cleaning up ---------------------------------------------------------------------------------------


def test_old_files_and_stray_partial_files_are_removed(app, world):
    client = login(app, "admin_a")
    batch_id = queued_batch_id(queue(client, "cards", station_id=world.station_a.id))
    assert worker.run_once() == PosterBatchStatus.DONE
    kept = Path(app.instance_path) / batch_row(batch_id).file_path
    folder = worker.batch_folder()
    long_ago = time.time() - 3600
    stray = folder / "999-deadbeef.pdf.part"  # a worker killed mid-batch
    stray.write_bytes(b"%PDF-1.4\n")
    os.utime(stray, (long_ago, long_ago))
    fresh = folder / "998-cafebabe.pdf.part"  # another worker writing right now
    fresh.write_bytes(b"%PDF-1.4\n")

    assert worker.sweep() == 1
    assert sorted(folder_files()) == sorted([kept.name, fresh.name])
    assert batch_row(batch_id).status == PosterBatchStatus.DONE

    db.session.execute(
        update(PosterBatch).where(PosterBatch.id == batch_id).values(finished_at=utcnow() - timedelta(hours=25))
    )
    db.session.commit()
    assert worker.sweep() == 1
    assert not kept.exists()
    batch = batch_row(batch_id)
    assert batch.status == PosterBatchStatus.EXPIRED and batch.file_path == ""
    page = client.get(f"/admin/poster-batches/{batch_id}").text
    assert "已过期删除" in page and 'id="batch-again"' in page
    gone = client.get(f"/admin/poster-batches/{batch_id}.pdf")
    assert gone.status_code == 410 and "文件已过期删除" in gone.text
