"""Poster batch jobs: a PDF too long for one response, rendered by a worker into a file to download.

``operations`` queues a batch for a page (scope as ``backend.admin.printing``), finds one in
scope and describes its progress; ``worker`` claims a batch with a lease, renders it page by
page into a file under the instance folder, records progress and removes old files; ``cli``
is ``flask posters run``.
"""
