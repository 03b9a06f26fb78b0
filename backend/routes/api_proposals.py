"""The JSON API (v1) of 代表建议: draft one from several items, submit it, record its answer.

Bearer tokens of deputies and supervisors only (``api_auth_required``): anyone else gets what the
API answers for another role. The rules are ``backend.proposals.operations``'; this module reads
requests and writes answers.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from backend import api_schemas
from backend.access import PROPOSAL_DRAFTERS
from backend.api_schemas import STAFF, describe
from backend.api_schemas import models as m
from backend.auth.sessions import api_auth_required, current_staff
from backend.extensions import csrf
from backend.items.refs import format_ref
from backend.models import Proposal
from backend.models.item import ITEM_CATEGORY_LABELS
from backend.proposals import operations as proposals
from backend.routes.api_staff import STAFF_ERRORS
from backend.timefmt import iso_or_none

bp = Blueprint("api_proposals", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens in headers; a browser's cookie is never accepted here

ERRORS = {400: m.ErrorResponse, **STAFF_ERRORS}  # another role: 404, audited


def proposal_json(proposal: Proposal, residents_told: int | None = None) -> dict:
    """A proposal, its status and the items behind it (no resident's details: references only)."""
    return {
        "id": proposal.id,
        "title": proposal.title,
        "body": proposal.body,
        "status": proposal.status.value,
        "status_label": proposal.status.label,
        "department": {"id": proposal.department.id, "name": proposal.department.name},
        "answer": proposal.answer,
        "created_at": proposal.created_at.isoformat(),
        "submitted_at": iso_or_none(proposal.submitted_at),
        "answered_at": iso_or_none(proposal.answered_at),
        "items": [
            {
                "ref": item.ref,
                "ref_display": format_ref(item.ref),
                "station": item.station.name,
                "category_label": ITEM_CATEGORY_LABELS[item.category],
                "has_resident_channel": item.resident_id is not None,
            }
            for item in proposal.items
        ],
        "residents_told": residents_told,
    }


@bp.post("/proposals")
@api_auth_required(*PROPOSAL_DRAFTERS)
@describe(tags=("代表建议",), security=STAFF, json=m.ProposalRequest, responses={201: m.ProposalInfo, **ERRORS})
def create_proposal():
    """``{title, item_refs, department_id, body?}`` → 201, the 建议 drafted (``drafted``).

    400 for an empty or short title, no references, an unknown reference or one of an item the caller
    cannot see (alike; the latter audited), a department not of the caller's region; nothing is written.
    """
    data: m.ProposalRequest = api_schemas.body()
    proposal = proposals.draft_proposal(
        current_staff(), title=data.title, body=data.body, item_refs=data.item_refs, department_id=data.department_id
    )
    return jsonify(proposal_json(proposal)), 201


@bp.post("/proposals/<int:proposal_id>/submit")
@api_auth_required(*PROPOSAL_DRAFTERS)
@describe(tags=("代表建议",), security=STAFF, responses={200: m.ProposalInfo, 409: m.ErrorResponse, **ERRORS})
def submit_proposal(proposal_id: int):
    """Submit a drafted 建议: each item's timeline tells its resident that their message went into it."""
    user = current_staff()
    proposal = proposals.perform(proposals.find_proposal(user, proposal_id), user, "submit")
    return jsonify(proposal_json(proposal))


@bp.post("/proposals/<int:proposal_id>/answer")
@api_auth_required(*PROPOSAL_DRAFTERS)
@describe(
    tags=("代表建议",),
    security=STAFF,
    json=m.ProposalAnswerRequest,
    responses={200: m.ProposalInfo, 409: m.ErrorResponse, **ERRORS},
)
def answer_proposal(proposal_id: int):
    """``{text}`` records the department's answer to a submitted 建议; every resident behind it is told (outbox).

    ``residents_told`` counts the residents with a WeChat channel; the others read it on their tracking page.
    409 ``transition_not_allowed`` for a 建议 not yet submitted or answered already.
    """
    user = current_staff()
    data: m.ProposalAnswerRequest = api_schemas.body()
    proposal = proposals.find_proposal(user, proposal_id)
    proposals.perform(proposal, user, "answer", data.text)
    told = sum(1 for item in proposal.items if item.resident_id is not None)
    return jsonify(proposal_json(proposal, residents_told=told))
