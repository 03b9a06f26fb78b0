"""The JSON API's requests and answers as pydantic models: what ``describe`` validates and the document shows.

Requests are strict about types (an id is a JSON integer or ASCII digits, a flag is ``true`` or
``false``) and leave meaning to the areas, so that a form and a JSON request get the same answer;
a field whose refusal the areas already name (``invalid_deputy`` …) keeps that code here
(``field_errors``). Answers list what the views return; a field the mini-program may meet as
``null`` says so. Unknown request fields are ignored (old mini-program versions send more).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel, StrictBool, StrictInt, StringConstraints

from backend import pagination
from backend.items import inbox
from backend.items.lifecycle import ACTIONS
from backend.items.validation import ID_RE, MAX_ID
from backend.models import ItemOutcome, Satisfaction

# --- building blocks --------------------------------------------------------------------------------

# The values the areas define, listed in the document as they are when the app starts.
ActionName = Literal[ACTIONS]  # the staff's actions; the resident's rows have endpoints of their own
OutcomeValue = Literal[tuple(outcome.value for outcome in ItemOutcome)]
SatisfactionValue = Literal[tuple(satisfaction.value for satisfaction in Satisfaction)]
InboxState = Literal[inbox.STATES]

Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
IdDigits = Annotated[str, StringConstraints(pattern=ID_RE.pattern)]
IdInput = Id | IdDigits  # JSON integer, or ASCII digits as forms and the mini-program's pickers send them


def _query_int(value: object) -> object:
    """A query parameter is text: only ASCII digits make an integer ("１", "٢", "+1", "1.0" do not)."""
    if isinstance(value, str):
        if not ID_RE.match(value):
            raise ValueError("not ASCII digits")
        return int(value)
    return value


def QueryInt(minimum: int, maximum: int):
    """An integer query parameter between ``minimum`` and ``maximum``, written in ASCII digits."""
    return Annotated[int, Ge(minimum), Le(maximum), BeforeValidator(_query_int)]  # the digits are checked first


class Request(BaseModel):
    """A request body or query: unknown fields ignored, a field's Chinese name in its ``title``."""

    model_config = ConfigDict(extra="ignore")
    field_errors: ClassVar[dict[str, tuple[str, str]]] = {}


class Answer(BaseModel):
    """An answer's body."""


class ErrorDetail(BaseModel):
    """What went wrong: a code for programs, a sentence in Chinese for people, the input concerned."""

    code: str = Field(examples=["invalid_deputy"])
    message: str = Field(examples=["请选择本站的一位在任代表，或选择“值班代表”。"])
    field: str | None = Field(default=None, examples=["deputy_id"])


class ErrorResponse(Answer):
    """Every error under /api/."""

    error: ErrorDetail


# --- codes and items (residents, no account) ------------------------------------------------------------


class DeputyCard(Answer):
    """A deputy as a poster shows them (no phone number)."""

    id: int
    name: str
    levels: list[str]
    constituency: str
    occupation: str
    status: str
    status_label: str
    photo_url: str | None


class StationCard(Answer):
    """A station, its reception days and its serving deputies."""

    id: int
    name: str
    address: str
    contact_phone: str
    reception_days: list[str]
    next_reception_days: list[str]
    deputies: list[DeputyCard]


class CodeRef(Answer):
    """The scanned code and its URL."""

    slug: str
    url: str


class OnDuty(Answer):
    """Who receives a message sent through a station's code today, and why."""

    deputy: DeputyCard | None
    reason: str


class Choice(Answer):
    """A value and its Chinese label."""

    value: str
    label: str


class FormLimits(Answer):
    """The form's limits."""

    body_min_chars: int
    body_max_chars: int
    max_photos: int
    photo_max_bytes: int = Field(description="一张照片最大字节数（压缩后）")


class TopicForm(Answer):
    """A topic code's own short form (专题码: 监测点, 立法联系点, 民生实事): the prompt, the choices, the closing day."""

    id: int
    kind: Literal["monitoring", "draft_law", "poll"]
    kind_label: str
    title: str
    prompt: str
    choices: list[str]
    closes_on: str


class CodeInfo(Answer):
    """What a scanned code leads to, and how the form is to be filled."""

    code: CodeRef
    kind: Literal["deputy", "station", "topic"]
    deputy: DeputyCard | None
    routes_to_station: bool
    station: StationCard
    on_duty: OnDuty | None
    categories: list[Choice]
    limits: FormLimits
    topic: TopicForm | None = None


class ItemSubmission(Request):
    """A resident's message (POST /api/v1/items). A repeated ``client_id`` returns the first item."""

    code: str | None = Field(default=None, title="二维码", description="扫到的码（slug）")
    body: str | None = Field(default=None, title="留言内容")
    category: str | None = Field(default=None, title="类别", description="GET /api/v1/codes/{slug} 的 categories 之一")
    deputy_id: IdInput | Literal["duty"] | None = Field(
        default=None, title="代表", description="联络站码：本站一位在任代表的 id，或 duty（值班代表）"
    )
    name: str | None = Field(default=None, title="姓名")
    phone: str | None = Field(default=None, title="手机号")
    consent: StrictBool | None = Field(default=None, title="同意说明")
    publish_consent: StrictBool | None = Field(
        default=None,
        title="同意公示",
        description="同意办结后在联络站公示页上公开（隐去姓名和电话），默认不同意",
    )
    client_id: str | None = Field(default=None, title="client_id", description="16–64 位字母、数字、- 或 _")
    choice: str | None = Field(
        default=None, title="选项", description="专题码：GET /api/v1/codes/{slug} 的 topic.choices 之一（有选项时必填）"
    )

    field_errors: ClassVar = {"deputy_id": ("invalid_deputy", "请选择本站的一位代表，或选择“值班代表”。")}


class SubmitAnswer(Answer):
    """The new (or, for a repeated ``client_id``, the first) item: its reference and key."""

    ref: str
    ref_display: str
    key: str
    status: str
    track_url: str


class KeyQuery(Request):
    """The item's access key, as the tracking link carries it."""

    key: str | None = Field(default=None, title="查询码")


class ItemLookupQuery(KeyQuery):
    """The access key, or the last four digits of the phone number the resident gave (read only: no key in the
    answer's links). With both, the key is used."""

    phone_last4: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] | None = Field(
        default=None, title="手机号后四位", description="留言时所留手机号的后四位（无查询码时）"
    )

    field_errors: ClassVar = {"phone_last4": ("invalid_phone_last4", "请填写留言时所留手机号的后四位（4位数字）。")}


class MessagePhotoAnswer(Answer):
    """A photo taken for the message: its place, how many the message has now, and its link for the key's holder."""

    ref: str
    position: int
    photos: int
    url: str


class Named(Answer):
    """An id and a name."""

    id: int
    name: str


class PublicEvent(Answer):
    """A step of the item the resident sees."""

    kind: str
    label: str
    body: str
    at: str
    photos: list[str] = Field(default=[], description="照片（群众补充时附的）")


class WaitingRequest(Answer):
    """The deputy's request for more (等待群众补充) the resident is asked to answer."""

    question: str
    since: str


class PublicItem(Answer):
    """An item as its key's holder sees it: never the resident's contact details.

    ``waiting``: the deputy's question while the item waits for the resident (answer it with
    ``POST /api/v1/items/{ref}/replies``), else null. ``can_follow_up``: whether a 追问
    (``POST /api/v1/items/{ref}/followups``, one a day) is possible now.
    """

    ref: str
    ref_display: str
    status: str
    status_label: str
    is_under_review: bool
    category: str
    category_label: str
    body: str
    created_at: str
    deputy: Named | None
    station: Named
    photos: list[str]
    timeline: list[PublicEvent]
    waiting: WaitingRequest | None
    can_follow_up: bool


class ResidentTextRequest(Request):
    """What the resident writes back: a reply to the deputy's request for more, or a 追问."""

    text: str | None = Field(default=None, title="内容", description="必填，不超过留言的字数上限")


class ResidentAnswerBack(Answer):
    """The item after the resident's reply or 追问, and the step it added to the timeline."""

    ref: str
    ref_display: str
    status: str
    status_label: str
    waiting: WaitingRequest | None
    can_follow_up: bool
    event: PublicEvent


class RatingRequest(Request):
    """The resident's verdict (满意度测评)."""

    satisfaction: SatisfactionValue | None = Field(
        default=None, title="满意程度", description="satisfied（满意）、basically（基本满意）或 unsatisfied（不满意）"
    )
    solved: StrictBool = Field(title="问题是否解决")
    comment: str | None = Field(default=None, title="评价意见", description="选择不满意时必填")

    field_errors: ClassVar = {
        "solved": ("invalid_solved", "请选择问题是否已经解决。"),
        "satisfaction": ("invalid_satisfaction", "请选择满意、基本满意或不满意。"),
    }


class RatingAnswer(Answer):
    """The item after the verdict ("accepted" again when not satisfied)."""

    ref: str
    ref_display: str
    status: str
    status_label: str
    satisfaction: str
    solved: bool
    reopened: bool


class EraseRequest(Request):
    """What the resident asks: withdraw an item nobody has answered, or erase their contact details."""

    what: Literal["withdraw", "contact"] | None = Field(
        default=None, title="要做的事", description="withdraw（撤回留言）或 contact（删除联系方式）"
    )

    field_errors: ClassVar = {
        "what": ("invalid_what", "请选择要做的事：撤回留言（withdraw）或删除联系方式（contact）。"),
    }


class EraseAnswer(Answer):
    """The item after the resident's request."""

    ref: str
    ref_display: str
    what: str
    status: str
    status_label: str
    has_contact: bool


class DirectoryDeputy(Answer):
    """A serving deputy in the directory."""

    id: int
    name: str
    levels: list[str]
    code_url: str | None
    qr_png_url: str


class DirectoryStation(Answer):
    """An active station in the directory."""

    id: int
    name: str
    address: str
    code_url: str | None
    qr_png_url: str
    deputies: list[DirectoryDeputy]


class Directory(Answer):
    """码上找代表: every active station and its serving deputies."""

    stations: list[DirectoryStation]


# --- staff tokens ----------------------------------------------------------------------------------------


class TokenRequest(Request):
    """A staff member's username and password."""

    username: str | None = Field(default=None, title="用户名")
    password: str | None = Field(default=None, title="密码")

    field_errors: ClassVar = {
        "username": ("missing_credentials", "请输入用户名和密码。"),
        "password": ("missing_credentials", "请输入用户名和密码。"),
    }


class StaffAccount(Answer):
    """A staff account as the mini-program shows it."""

    id: int
    username: str
    role: str
    display_name: str


class TokenAnswer(Answer):
    """A new bearer token and whose it is."""

    token: str
    expires_at: str
    user: StaffAccount


class WhoAmI(Answer):
    """The account a token belongs to."""

    user: StaffAccount
    expires_at: str


# --- residents' WeChat identity -------------------------------------------------------------------------


class WechatLoginRequest(Request):
    """The code ``wx.login`` gave the mini-program."""

    code: str | None = Field(default=None, title="登录凭证")

    field_errors: ClassVar = {"code": ("invalid_login_code", "缺少登录凭证（wx.login 的 code），请重新打开小程序。")}


class ResidentToken(Answer):
    """A resident's token (the session key stays on the server)."""

    token: str
    expires_at: str


class Paging(Request):
    """``?page=&per_page=`` of a list (backend/pagination.py): a value out of bounds or not ASCII digits is a 400
    naming the parameter."""

    page: QueryInt(1, pagination.MAX_PAGE) | None = Field(default=None, title="页码")
    per_page: QueryInt(1, pagination.MAX_PER_PAGE) | None = Field(default=None, title="每页条数")

    field_errors: ClassVar = pagination.PAGING_ERRORS


class DeputySearchQuery(Paging):
    """码上找代表's search: words of a deputy's name, their station or their township (every deputy when empty)."""

    q: str | None = Field(default=None, title="搜索", description="代表姓名、联络站或乡镇名称中的字")


class DirectoryStationRef(Answer):
    """The station a deputy serves at, and its township."""

    id: int
    name: str
    township: str
    code_url: str | None


class DeputyMatch(Answer):
    """A serving deputy the search found, with their station and their code."""

    id: int
    name: str
    levels: list[str]
    code_url: str | None
    qr_png_url: str
    station: DirectoryStationRef


class DeputySearch(Answer):
    """One page of the deputies found, by township, station and deputy."""

    q: str
    deputies: list[DeputyMatch]
    page: int
    per_page: int
    total: int
    pages: int
    has_next: bool


class MyItemsQuery(Paging):
    """Paging of the resident's items."""


class MyItem(Answer):
    """One of the resident's items, with its tracking link."""

    ref: str
    ref_display: str
    key: str
    status: str
    status_label: str
    is_under_review: bool
    summary: str
    deputy: Named | None
    station: Named
    created_at: str
    track_url: str


class MyItems(Answer):
    """One page of the resident's items, newest first."""

    items: list[MyItem]
    page: int
    per_page: int
    total: int
    pages: int
    has_next: bool


class WechatBindRequest(Request):
    """A deputy ties their WeChat to their account with the binding code shown on the web page."""

    code: str | None = Field(default=None, title="登录凭证")
    binding_code: str | None = Field(default=None, title="绑定码")


class BindAnswer(Answer):
    """The account now tied to this WeChat user, signed in: a bearer token as ``POST /api/v1/auth/token`` gives one
    (null for an account that is not active)."""

    bound: bool
    user: StaffAccount
    token: str | None
    expires_at: str | None


class TemplateInfo(Answer):
    """A subscription message template: its purpose, id and fields."""

    purpose: str
    id: str
    kind: str
    keys: list[str]


class TemplatesAnswer(Answer):
    """Which templates to request, per audience, in calls of at most three ids."""

    templates: list[TemplateInfo]
    requests: dict[str, list[list[str]]]
    max_per_request: int


class SubscriptionReport(Request):
    """The result object of one ``wx.requestSubscribeMessage`` call."""

    results: dict[str, Any] | None = Field(
        default=None, title="订阅结果", description="{模板ID: accept|reject|ban|filter}"
    )

    field_errors: ClassVar = {"results": ("invalid_results", "results 须为 {模板ID: accept|reject|ban|filter}。")}


class CreditsAnswer(Answer):
    """Messages the caller may still be sent, per template named."""

    credits: dict[str, int]


class NoticesAnswer(Answer):
    """Whether the caller's notices are on, and which templates to ask for again."""

    on: bool
    credits: dict[str, int]
    kinds: dict[str, str]
    ask_again: list[list[str]]


# --- staff: inbox, one item, actions ----------------------------------------------------------------------


class InboxQuery(Paging):
    """Which part of the inbox, a search, and paging."""

    state: InboxState | None = Field(
        default=None, title="分组", description="todo（默认）、overdue、reopened、new、in_progress、resolved、closed"
    )
    q: str | None = Field(default=None, title="搜索", description="留言编号或留言中的文字")


class InboxRow(Answer):
    """One inbox line."""

    ref: str
    ref_display: str
    group: str
    status: str
    status_label: str
    is_overdue: bool
    mark: str = Field(description="承办单位已答复 / 群众已补充 when the latest step is theirs, else empty")
    category: str
    category_label: str
    first_line: str
    created_at: str
    age: str
    due_at: str | None
    reopen_count: int
    deputy: Named | None


class InboxAnswer(Answer):
    """Counts per group and one page of the inbox."""

    counts: dict[str, int]
    state: str
    query: str
    page: int
    per_page: int
    pages: int
    total: int
    has_next: bool
    items: list[InboxRow]


class StaffItem(Answer):
    """The item in full, as its handlers see it."""

    ref: str
    ref_display: str
    status: str
    status_label: str
    category: str
    category_label: str
    channel: str
    channel_label: str
    body: str
    created_at: str
    due_at: str | None
    is_overdue: bool
    overdue_label: str
    is_paused: bool
    first_answered_at: str | None
    resolved_at: str | None
    outcome: str | None
    outcome_label: str
    outcome_reason: str
    satisfaction: str | None
    satisfaction_label: str
    reopen_count: int
    reopen_reason: str
    needs_review: bool
    review_reason: str
    deputy: Named | None
    station: Named


class MaskedContact(Answer):
    """The resident's contact as shown before a reveal: 王** / 138****1234."""

    name: str
    phone: str
    has_contact: bool
    reveal_url: str


class PhotoInfo(Answer):
    """A photo of the item."""

    position: int
    width: int
    height: int
    url: str


class ForwardInfo(Answer):
    """A forward to a department (交办) and its answer."""

    id: int
    department: str
    instructions: str
    created_at: str
    due_at: str
    answered_at: str | None
    answer: str | None
    promised_by: str | None
    revoked_at: str | None


class StaffEvent(Answer):
    """A step of the item as staff see it (``is_public``: the resident sees it too)."""

    id: int
    kind: str
    label: str
    is_public: bool
    body: str
    created_at: str


class TimelineRow(StaffEvent):
    """A step, who took it, and what only staff see of it."""

    actor: str
    detail: Any = None


class ActionInfo(Answer):
    """An action the user may take now."""

    action: str
    label: str


class DepartmentInfo(Answer):
    """A department items may be forwarded to."""

    id: int
    name: str
    region: str
    region_code: str


class ReplyTemplateInfo(Answer):
    """One of the user's reply templates."""

    id: int
    title: str
    body: str


class StaffItemAnswer(Answer):
    """Everything the deputy's phone shows of one item."""

    item: StaffItem
    contact: MaskedContact
    photos: list[PhotoInfo]
    forwards: list[ForwardInfo]
    timeline: list[TimelineRow]
    actions: list[ActionInfo]
    departments: list[DepartmentInfo]
    station_deputies: list[Named]
    templates: list[ReplyTemplateInfo]


class RevealedContact(Answer):
    """The resident's full name and number (the reveal is audited)."""

    name: str
    phone: str


class DepartmentsQuery(Request):
    """Whose region's departments: an item's (``ref``) or the user's own."""

    ref: str | None = Field(default=None, title="留言编号")


class DepartmentsAnswer(Answer):
    """Departments items may be forwarded to."""

    departments: list[DepartmentInfo]


class ActionRequest(Request):
    """An action on an item; which fields it needs depends on the action (see ``actions`` of GET /api/v1/inbox/{ref})."""

    action: ActionName | None = Field(
        default=None, title="操作", description="可用的操作见 GET /api/v1/inbox/{ref} 的 actions"
    )
    text: str | None = Field(default=None, title="说明")
    department_id: IdInput | None = Field(default=None, title="承办单位", description="forward：承办单位的 id")
    due: str | None = Field(
        default=None, title="办理期限", description="forward、extend：YYYY-MM-DD（当天结束）或带时区的时间"
    )
    deputy_id: IdInput | None = Field(default=None, title="代表", description="reassign：本站另一位在任代表的 id")
    duplicate_of: str | None = Field(default=None, title="重复的留言编号", description="duplicate")
    outcome: OutcomeValue | None = Field(
        default=None, title="办理结果", description="resolve：solved、partly 或 unsolved"
    )

    field_errors: ClassVar = {
        "action": ("invalid_action", "不支持的操作。"),
        "outcome": ("invalid_outcome", "请选择办理结果：已解决、部分解决或未能解决。"),
        "department_id": ("invalid_department_id", "请选择本地区的一个承办单位。"),
        "deputy_id": ("invalid_deputy_id", "请选择本站的另一位在任代表。"),
    }


class DepartmentActionRequest(Request):
    """What a department does with a forwarded item (its account's token; the item is in its inbox)."""

    action: Literal["progress", "answer", "extension", "return", "pass_on"] | None = Field(
        default=None,
        title="操作",
        description="progress（报告进展，可多次）、answer（最终答复，一次）、extension（申请延期）、return（退回）、"
        "pass_on（转交下属单位）",
    )
    department_id: IdInput | None = Field(default=None, title="下属单位", description="pass_on：本单位下属单位的 id")
    text: str | None = Field(default=None, title="内容", description="progress、answer：办理情况；extension：延期理由")
    promised_by: str | None = Field(default=None, title="预计完成日期", description="progress、answer：YYYY-MM-DD")
    due: str | None = Field(
        default=None,
        title="期限",
        description="extension：延期至，YYYY-MM-DD，不超过联络站规定的天数；pass_on：下属单位的期限，不晚于本单位的",
    )
    reason: str | None = Field(default=None, title="退回理由", description="return：必填")

    field_errors: ClassVar = {
        "action": ("invalid_action", "不支持的操作。"),
        "department_id": ("invalid_department_id", "请选择本单位的一个下属单位。"),
    }


class ForwardState(Answer):
    """A forward as its department and the deputy see it after a step."""

    id: int
    department: str
    due_at: str
    answered_at: str | None
    returned_at: str | None
    extension_due_at: str | None


class DepartmentActionAnswer(Answer):
    """The item's status and the forward after the department's step."""

    ref: str
    status: str
    status_label: str
    forward: ForwardState


class ExtensionDecisionRequest(Request):
    """The deputy's answer to a department's request for more time."""

    decision: Literal["grant", "refuse"] | None = Field(
        default=None, title="决定", description="grant（同意）或 refuse"
    )
    text: str | None = Field(default=None, title="说明", description="同意时作为延期原因告知群众；不同意时的理由")

    field_errors: ClassVar = {"decision": ("invalid_decision", "请选择同意或不同意延期。")}


class ActionItem(Answer):
    """The item after the action."""

    ref: str
    ref_display: str
    status: str
    status_label: str
    due_at: str | None
    visible_to_you: bool


class ActionAnswer(Answer):
    """The new status and the event; a forward also answers the department's link, once."""

    item: ActionItem
    event: StaffEvent
    department_link: str | None = None


# --- supervision figures ------------------------------------------------------------------------------------


class StatsQuery(Request):
    """Exactly one scope, and a range (``to`` exclusive; default the last 12 months)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    region: str | None = Field(default=None, title="地区代码")
    station: str | None = Field(default=None, title="联络站", description="联络站 id")
    deputy: str | None = Field(default=None, title="代表", description="代表 id")
    department: str | None = Field(
        default=None, title="承办单位", description="承办单位 id（监督人员，本地区的单位；下属单位计入其上级单位）"
    )
    from_: str | None = Field(default=None, alias="from", title="起始日期", description="YYYY-MM-DD")
    to: str | None = Field(default=None, title="截止日期", description="YYYY-MM-DD，当天不计入")


class ScopeInfo(Answer):
    """The scope the figures are of."""

    kind: str
    key: str
    label: str


class RateFigures(Answer):
    """答复率, 办结率, 满意率 and the counts they are of, as the dashboard and each of its months give them.

    One class, so that a scope's figures and a month's name the three rates alike.
    """

    received: int
    answered: int
    resolved: int
    rated: int
    answer_rate: float | None
    resolve_rate: float | None
    satisfaction_rate: float | None


class MonthFigures(RateFigures):
    """One month's figures; a rate is null below the scope's ``min_sample``."""

    month: str
    valid: int
    satisfied: int


class StatsAnswer(RateFigures):
    """答复率, 办结率, 满意率 and their parts; a rate is null below ``min_sample``."""

    model_config = ConfigDict(populate_by_name=True)

    median_first_answer_hours: float | None
    median_resolve_hours: float | None
    overdue: int
    valid: int
    declined: int
    duplicate: int
    withdrawn: int
    satisfied: int
    basically_satisfied: int
    unsatisfied: int
    in_person: int
    meeting_rate: float | None
    meeting_rate_note: str | None = None
    meeting_days_present: int = 0
    meeting_days_given: int = 0
    contacts: int = 0
    station_visits: int = 0
    held: int
    min_sample: int
    scope: ScopeInfo
    from_: str = Field(alias="from")
    to: str
    months: list[MonthFigures]


# --- presence at stations (进站签到) and scans over time ----------------------------------------------------


class PresenceRequest(Request):
    """A check-in (or, with a visit open, a check-out) at a station; an administrator names the deputy."""

    station_id: IdInput | None = Field(default=None, title="联络站", description="签到的联络站 id（代表本人所在站）")
    deputy_id: IdInput | None = Field(
        default=None, title="代表", description="联络站管理员代为登记时必填：本站代表的 id；代表本人签到时不填"
    )
    intent: Literal["in", "out"] | None = Field(
        default=None,
        title="签到或签退",
        description="按钮的意思：in（签到，不会签退）、out（签退，立即关闭未签退的签到）；不填则切换（扫码）",
    )

    field_errors: ClassVar = {
        "station_id": ("invalid_station_id", "请指定联络站。"),
        "deputy_id": ("invalid_deputy_id", "请指定本站的一位代表。"),
        "intent": ("invalid_intent", "请点“签到”或“签退”按钮。"),
    }


class Visit(Answer):
    """One visit of a deputy to a station."""

    id: int
    deputy_id: int
    station_id: int
    day: str
    checked_in_at: str
    checked_out_at: str | None
    is_open: bool
    is_reception_day: bool
    source: str
    source_label: str


class PresenceAnswer(Answer):
    """What the call did (checked_in: 201; checked_out or repeated: 200), the visit, and a sentence to show."""

    action: Literal["checked_in", "checked_out", "repeated"]
    visit: Visit
    message: str


class PresenceStateQuery(Request):
    """The station whose 签到 state the deputy asks for (the station code they scanned)."""

    station_id: str | None = Field(default=None, title="联络站", description="联络站 id（代表本人所在站）")

    field_errors: ClassVar = {"station_id": ("invalid_station_id", "请指定联络站。")}


class PresenceState(Answer):
    """What the deputy's 签到 screen shows at their station: the open visit if any, whether today is their
    reception day, their reception days, and the button to show (签到 or 签退)."""

    station: Named
    deputy: Named
    visit: Visit | None
    minutes_in: int | None = Field(description="已在站分钟数（有未签退的签到时）")
    is_reception_day: bool
    reception_days: list[str]
    next_action: Literal["in", "out"]


# --- 联系群众 (走访, 座谈, 电话) without an item -------------------------------------------------------------


class ContactsQuery(Request):
    """The deputy's own contacts, newest first."""

    limit: QueryInt(1, 100) | None = Field(default=None, title="条数", description="最多返回多少条，默认20")
    deputy: str | None = Field(default=None, title="代表", description="只能是本人的代表 id（可不填）")

    field_errors: ClassVar = {"limit": ("invalid_limit", "条数须为1到100之间的整数。")}


class ContactRequest(Request):
    """A 走访, 座谈 or phone call the deputy logs: how, when (default today), where, how many people, what was raised."""

    kind: str | None = Field(
        default=None, title="联系方式", description="visit（走访）、meeting（座谈）或 phone（电话）"
    )
    held_on: str | None = Field(
        default=None, title="联系日期", description="YYYY-MM-DD，不晚于今天、不早于92天前；不填为今天"
    )
    place: str | None = Field(default=None, title="地点", description="选填，最多100字")
    people: StrictInt | IdDigits | None = Field(default=None, title="人数", description="见到的群众人数，1到10000")
    summary: str | None = Field(default=None, title="群众反映的内容", description="一行，最多200字")
    deputy_id: IdInput | None = Field(default=None, title="代表", description="只能是本人的代表 id（可不填）")

    field_errors: ClassVar = {
        "kind": ("invalid_kind", "请选择联系方式：走访、座谈或电话。"),
        "people": ("invalid_people", "请填写见到的群众人数（1到10000之间的整数）。"),
        "deputy_id": ("invalid_deputy_id", "代表编号不正确。"),
    }


class ContactInfo(Answer):
    """One logged contact."""

    id: int
    kind: Literal["visit", "meeting", "phone"]
    kind_label: str
    held_on: str
    place: str
    people: int
    summary: str
    station: Named
    item_ref: str | None = Field(description="转为留言件后的编号；未转为 null")
    created_at: str


class ContactAnswer(Answer):
    """The contact just logged."""

    contact: ContactInfo
    message: str


class ContactsAnswer(Answer):
    """The deputy's latest contacts, newest first, and the kinds a contact may be of."""

    contacts: list[ContactInfo]
    kinds: list[Choice]


class ScansQuery(Request):
    """One station and a range (``to`` exclusive; default the last 12 months)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    station: str | None = Field(default=None, title="联络站", description="联络站 id")
    from_: str | None = Field(default=None, alias="from", title="起始日期", description="YYYY-MM-DD")
    to: str | None = Field(default=None, title="截止日期", description="YYYY-MM-DD，当天不计入")


class ScanDay(Answer):
    """One code's day: scans of the code (web page), and items sent through it."""

    day: str
    scans: int
    items: int


class CodeScans(Answer):
    """One code of the station (its own or a deputy's, current or retired) and its days with a scan or an item."""

    code_id: int
    slug: str
    kind: Literal["station", "deputy"]
    name: str
    is_current: bool
    scans: int
    items: int
    days: list[ScanDay]


class ScansAnswer(Answer):
    """Per code and day: scans and items."""

    model_config = ConfigDict(populate_by_name=True)

    station: ScopeInfo
    from_: str = Field(alias="from")
    to: str
    codes: list[CodeScans]


class MeasuredDepartment(Answer):
    """Which department the figures are of."""

    id: int
    name: str


class DepartmentStatsAnswer(Answer):
    """A department's figures (its units rolled in): the forwards it received in the range and what became of them;
    a rate is null below ``min_sample``, and ``satisfaction_rate_note`` then says why."""

    model_config = ConfigDict(populate_by_name=True)

    department: MeasuredDepartment
    received: int
    answered_on_time: int
    returned: int
    overdue: int
    median_answer_hours: float | None
    satisfaction_rate: float | None
    satisfaction_rate_note: str | None
    answered: int
    answered_late: int
    on_time_rate: float | None
    rated: int
    satisfied: int
    basically_satisfied: int
    unsatisfied: int
    min_sample: int
    from_: str = Field(alias="from")
    to: str


class AnyStatsAnswer(RootModel[StatsAnswer | DepartmentStatsAnswer]):
    """The figures of a region, station or deputy (``StatsAnswer``), or of a department (``DepartmentStatsAnswer``)."""


# --- 公示 (public, no account) -------------------------------------------------------------------------------


class PublicRate(Answer):
    """A rate as the 公示 shows it: null below the minimum sample, with its parts and its label (样本不足（3件）)."""

    value: float | None
    label: str
    numerator: int
    denominator: int


class PublicFigures(Answer):
    """The station's figures over the last twelve months."""

    received: int
    valid: int
    answered: int
    resolved: int
    rated: int
    answer_rate: PublicRate
    resolve_rate: PublicRate
    satisfaction_rate: PublicRate
    median_first_answer_hours: float | None


class PublicStation(Answer):
    """The station."""

    id: int
    name: str
    address: str


class PublicReceptionDay(Answer):
    """A coming reception day and the deputies named on duty (empty: none named)."""

    date: str
    deputies_on_duty: list[str]


class PublishedItem(Answer):
    """A resolved item its resident agreed to publish: no name, no number, numbers in the texts masked."""

    category: str
    received_on: str
    resolved_on: str
    body: str
    answer: str
    outcome: str


class StationDisclosure(Answer):
    """公示 of a station: figures, reception days, deputies, published items, and what each means."""

    model_config = ConfigDict(populate_by_name=True)

    station: PublicStation
    from_: str = Field(alias="from")
    to: str
    min_sample: int
    figures: PublicFigures
    reception_rules: list[str]
    reception_days: list[PublicReceptionDay]
    deputies: list[str]
    published: list[PublishedItem]
    definitions: dict[str, str]


# --- 代表建议 (proposals) ----------------------------------------------------------------------------------


class ProposalRequest(Request):
    """A new 代表建议 drawn from several items the caller can see (a deputy's, or a supervisor's region's)."""

    title: str | None = Field(default=None, title="建议标题", description="4–100 字")
    body: str | None = Field(default=None, title="建议内容", description="可空，最多 5000 字")
    item_refs: list[str] | None = Field(
        default=None, title="留言编号", description="1–50 件调用者可见的留言编号（如 Y3K7-2QPM 或 Y3K72QPM）"
    )
    department_id: IdInput | None = Field(
        default=None, title="承办单位", description="调用者所在地区（或上级地区）的在用承办单位 id"
    )

    field_errors: ClassVar = {
        "department_id": ("invalid_department", "请选择本地区（或上级）的在用承办单位。"),
        "item_refs": ("no_items", "请至少选择一件群众留言。"),
    }


class ProposalAnswerRequest(Request):
    """The answering department's reply to a submitted 建议, as the drafter or the county office records it."""

    text: str | None = Field(default=None, title="答复内容", description="2–5000 字，群众在查询页看到")


class ProposalItemInfo(Answer):
    """An item behind a proposal."""

    ref: str
    ref_display: str
    station: str
    category_label: str
    has_resident_channel: bool


class ProposalInfo(Answer):
    """A 代表建议 and where it stands."""

    id: int
    title: str
    body: str
    status: Literal["drafted", "submitted", "answered"]
    status_label: str
    department: Named
    answer: str
    created_at: str
    submitted_at: str | None
    answered_at: str | None
    items: list[ProposalItemInfo]
    residents_told: int | None = None
