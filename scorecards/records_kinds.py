"""Credit records (issue 10), part 1: the kinds a record may have and the mainland calendar
their time limits are counted in. Pure: no gRPC, no database.

- `RecordKind` / `RecordKindRegistry`: a kind's minimum and maximum publicity periods and
  whether an objection suspends counting; plugins add kinds through the
  `register_record_kinds` hook, the built-in ones are `BUILTIN_KINDS`, each citing its source
  (research/domain.md §7).
- `working_days_after`, `is_working_day`, `calendar_known`: deadlines in mainland working
  days, adjusted working days included (the `chinese-calendar` package's data);
  `add_months` for the periods.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import chinese_calendar

from .model import Provenance, ProvenanceTag, SubjectKind, Title

# -- the calendar --------------------------------------------------------------------------


def is_working_day(day: dt.date) -> bool:
    """A mainland working day: Monday to Friday unless a public holiday, and the weekend days
    the State Council's yearly notice makes working days (调休). Beyond the years the
    calendar package knows, Monday to Friday (`calendar_known` tells which)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def calendar_known(day: dt.date) -> bool:
    """Whether the holiday calendar covers `day`'s year (else deadlines are provisional)."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def working_days_after(start: dt.date, n: int) -> dt.date:
    """The `n`-th working day after `start` (the day the time limit ends)."""
    day, left = start, n
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus whole months; the 31st of a shorter month is its last day."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# -- kinds ---------------------------------------------------------------------------------


class Severity(str, Enum):
    MINOR = "minor"  # 轻微
    GENERAL = "general"  # 一般
    SERIOUS = "serious"  # 严重


class LinkRole(str, Enum):
    LEGAL_REPRESENTATIVE = "legal_representative"  # 法定代表人
    PRINCIPAL = "principal"  # 主要负责人
    DIRECTLY_RESPONSIBLE = "directly_responsible"  # 直接责任人


@dataclass(frozen=True)
class RecordKind:
    """A kind of record: a list or a class of penalty, with its publicity periods in months.

    `min_months`: repair may be asked once this has passed since the decision date;
    `max_months`: the record expires at its end (0: the kind has no end by time). A kind
    whose `restricts_linked` is set bars the linked persons of the given roles for
    `restriction_months` from the decision date (the 3-year legal-representative bar). A kind
    whose decisions each set a ban on the subject itself (a procurement or tendering
    debarment of 1 to 3 years) declares its bounds in `ban_months` (least, most): a record of
    it gives its `restriction_end`, which must lie within them from the decision date."""

    name: str
    title: Title
    subject_kinds: frozenset[SubjectKind]
    min_months: int
    max_months: int
    counts_under_objection: bool
    provenance: Provenance
    restricts_linked: frozenset[LinkRole] = frozenset()
    restriction_months: int = 0
    ban_months: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if (
            not self.name
            or not all(c.isalnum() or c in "._-" for c in self.name)
            or self.name != self.name.lower()
        ):
            raise ValueError(
                f"a record kind name is lower-case letters, digits, '.', '_', '-': {self.name!r}"
            )
        if (
            self.min_months < 0
            or self.max_months < 0
            or (self.max_months and self.min_months > self.max_months)
        ):
            raise ValueError(f"record kind {self.name}: 0 <= min_months <= max_months (or max 0)")
        if self.restricts_linked and self.restriction_months <= 0:
            raise ValueError(f"record kind {self.name}: restriction_months must be positive")
        if self.ban_months is not None and not 0 < self.ban_months[0] <= self.ban_months[1]:
            raise ValueError(f"record kind {self.name}: ban_months is (least, most), 0 < least")


class RecordKindRegistry:
    """The kinds known to this server: the built-in ones and the plugins' (through the
    `register_record_kinds(register)` hook; a name taken by another kind is refused)."""

    def __init__(self, kinds: Iterable[RecordKind] = ()) -> None:
        self._kinds: dict[str, RecordKind] = {}
        for k in kinds:
            self.register(k)

    def register(self, kind: RecordKind) -> None:
        if not isinstance(kind, RecordKind):
            raise TypeError(f"register() takes a RecordKind, not {type(kind).__name__}")
        known = self._kinds.get(kind.name)
        if known is not None and known != kind:
            raise ValueError(f"record kind {kind.name!r} is already registered with other periods")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> RecordKind | None:
        return self._kinds.get(name)

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def all(self) -> list[RecordKind]:
        return [self._kinds[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds


def _p(tag: ProvenanceTag, source: str, article: str = "") -> Provenance:
    return Provenance(tag, source, article)


_ORG = frozenset({SubjectKind.ORGANIZATION})
_BOTH = frozenset({SubjectKind.ORGANIZATION, SubjectKind.PERSON})
_NDRC58 = "《失信行为纠正后的信用信息修复管理办法（试行）》(国家发展改革委令第58号)"
_NDRC_2026 = "《信用修复管理办法》(国家发展改革委, 2026-04-01 施行)"

BUILTIN_KINDS: tuple[RecordKind, ...] = (
    RecordKind(
        "administrative_penalty",
        Title("行政处罚", "Administrative penalty"),
        _BOTH,
        3,
        36,
        True,
        _p(ProvenanceTag.SECONDARY, _NDRC58, "公示期最短3个月、最长3年"),
    ),
    RecordKind(
        "administrative_penalty.safety",
        Title(
            "行政处罚（安全生产、特种设备、消防安全）",
            "Administrative penalty (work safety, special equipment, fire safety)",
        ),
        _BOTH,
        12,
        36,
        True,
        _p(ProvenanceTag.SECONDARY, _NDRC58, "最短公示期1年"),
    ),
    RecordKind(
        "serious_dishonesty",
        Title("严重失信主体名单", "Serious dishonesty list"),
        _BOTH,
        12,
        36,
        False,
        _p(ProvenanceTag.SECONDARY, _NDRC_2026, "严重失信: 公示1至3年"),
    ),
    RecordKind(
        "joint_punishment",
        Title("联合惩戒对象名单（黑名单）", "Joint punishment list (blacklist)"),
        _BOTH,
        12,
        36,
        False,
        _p(ProvenanceTag.SECONDARY, _NDRC_2026, "严重失信: 公示1至3年"),
    ),
    RecordKind(
        "dishonest_debtor",
        Title("失信被执行人名单", "Court dishonest-debtor list"),
        _BOTH,
        0,
        24,
        True,
        _p(
            ProvenanceTag.UNVERIFIED,
            "《最高人民法院关于公布失信被执行人名单信息的若干规定》(2017修正)",
            "第6条: 纳入期限2年; 履行后删除",
        ),
    ),
    RecordKind(
        "major_tax_violation",
        Title("重大税收违法失信主体", "Major tax-violation list"),
        _BOTH,
        0,
        36,
        True,
        _p(
            ProvenanceTag.DESIGN,
            "财库〔2016〕125号 names the list; the period is this project's default",
        ),
    ),
    RecordKind(
        "procurement_dishonesty",
        Title("政府采购严重违法失信行为记录名单", "Procurement serious-violation list"),
        _ORG,
        12,
        36,
        True,
        _p(ProvenanceTag.VERIFIED, "《政府采购法》(2014)", "第77条: 1至3年内禁止参加政府采购活动"),
    ),
    RecordKind(
        "procurement_debarment",
        Title(
            "禁止参加政府采购活动（财政部门行政处罚）",
            "Ban from government procurement (finance department penalty)",
        ),
        _ORG,
        12,
        36,
        True,
        _p(
            ProvenanceTag.VERIFIED,
            "《政府采购法》(2014)；《政府采购法实施条例》(2015)",
            "法第77条、条例第73条: 一至三年内禁止参加政府采购活动",
        ),
        ban_months=(12, 36),
    ),
    RecordKind(
        "abnormal_operations",
        Title("经营异常名录", "Abnormal-operations list"),
        _ORG,
        0,
        36,
        False,
        _p(ProvenanceTag.VERIFIED, "《企业信息公示暂行条例》(2014)", "第17条"),
    ),
    RecordKind(
        "serious_violation_enterprise",
        Title("严重违法企业名单", "Serious-violation enterprise list"),
        _ORG,
        60,
        60,
        False,
        _p(ProvenanceTag.VERIFIED, "《企业信息公示暂行条例》(2014)", "第17条: 5年"),
        frozenset({LinkRole.LEGAL_REPRESENTATIVE, LinkRole.PRINCIPAL}),
        36,
    ),
    RecordKind(
        "licence_revoked",
        Title("吊销营业执照", "Business licence revoked"),
        _ORG,
        36,
        36,
        False,
        _p(ProvenanceTag.VERIFIED, "《公司法》(2023)", "第178条: 吊销之日起未逾3年"),
        frozenset({LinkRole.LEGAL_REPRESENTATIVE}),
        36,
    ),
    RecordKind(
        "construction.bad_record",
        Title("建筑市场不良信用信息", "Construction bad record"),
        _BOTH,
        6,
        36,
        True,
        _p(
            ProvenanceTag.SECONDARY,
            "《建筑市场信用管理暂行办法》",
            "不良信息公布期6个月至3年; 异议期间不停止公布",
        ),
    ),
    RecordKind(
        "construction.tender_debarment",
        Title(
            "取消参加依法必须招标项目的投标资格",
            "Debarment from tendering for projects that must be tendered",
        ),
        _ORG,
        12,
        36,
        True,
        _p(
            ProvenanceTag.VERIFIED,
            "《招标投标法实施条例》(2019修订)",
            "第67、68条: 取消其1至2年（情节特别严重的1至3年）内参加依法必须招标项目的投标资格",
        ),
        ban_months=(12, 36),
    ),
    RecordKind(
        "social_org.abnormal",
        Title("社会组织活动异常名录", "Social organization abnormal-activity list"),
        _ORG,
        0,
        6,
        False,
        _p(ProvenanceTag.SECONDARY, "《社会组织信用信息管理办法》", "6个月自动移出"),
    ),
    RecordKind(
        "social_org.serious",
        Title("社会组织严重违法失信名单", "Social organization serious list"),
        _ORG,
        24,
        36,
        False,
        _p(ProvenanceTag.SECONDARY, "《社会组织信用信息管理办法》", "满2年可移出"),
    ),
    RecordKind(
        "bribery_conviction",
        Title("行贿犯罪记录", "Bribery conviction"),
        _BOTH,
        36,
        36,
        True,
        _p(ProvenanceTag.SECONDARY, "财库〔2016〕125号 and local practice", "近3年内行贿犯罪记录"),
    ),
)


def builtin_kinds() -> RecordKindRegistry:
    return RecordKindRegistry(BUILTIN_KINDS)
