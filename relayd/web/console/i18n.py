"""The console's words in English and Chinese, and which language a request gets — pure.

Why one catalog for templates and script alike: the server renders the page text with it and hands the same
dictionary to the page's JavaScript (a JSON data block), so a word is translated once. The language comes from the
``relayd_lang`` cookie the switch sets, else from ``Accept-Language`` (highest weight that we speak), else English.
"""

from __future__ import annotations

from enum import StrEnum

LANG_COOKIE = "relayd_lang"


class Lang(StrEnum):
    EN = "en"
    ZH = "zh"


_EN: dict[str, str] = {
    "app": "relayd console",
    "login.title": "Sign in",
    "login.token": "API token",
    "login.help": "The api_token from the settings, or the api_token file next to the state file.",
    "login.submit": "Sign in",
    "login.wrong": "That token is not right.",
    "login.cross_site": "Sign-in refused: the form was not sent from this console.",
    "login.disabled": "The console is disabled: the daemon has no api_token.",
    "logout": "Sign out",
    "nav.timeline": "Timeline",
    "lang.switch": "中文",
    "tz.label": "Time zone",
    "tz.browser": "Browser",
    "zoom.6h": "6 h",
    "zoom.1d": "1 day",
    "zoom.1w": "1 week",
    "zoom.all": "Whole horizon",
    "pan.back": "◀ Earlier",
    "pan.now": "Now",
    "pan.forward": "Later ▶",
    "filter.text": "Filter by id or title",
    "filter.group": "All groups",
    "filter.state": "All states",
    "live.lost": "Connection lost — reconnecting…",
    "live.on": "Live",
    "problems.title": "Alerts and problems",
    "problems.none": "No problems reported.",
    "problems.config": "Config problems",
    "problems.alerts": "Open alerts",
    "problems.held": "Removals held by the guard",
    "problems.conflicts": "Installation conflicts",
    "problems.failed": "Failed segments",
    "problems.stalled": "Streams stalled",
    "health.stalled": "stalled",
    "problems.warnings": "Config warnings",
    "problems.since": "open since {at}",
    "severity.critical": "critical",
    "severity.warning": "warning",
    "severity.info": "info",
    "action.release": "Release held removals",
    "action.retry": "Retry now",
    "action.confirm": "Confirm",
    "action.cancel": "Cancel",
    "action.confirm_retry": "Retry segment {key} now?",
    "action.confirm_release": "Release every held removal? Their tasks will be stopped and deleted.",
    "action.done": "Done.",
    "action.refused": "Refused: {message}",
    "state.planned": "planned",
    "state.created": "created",
    "state.relaying": "relaying",
    "state.failing": "failing",
    "state.failed": "failed",
    "state.ended": "ended",
    "state.deleted": "deleted",
    "warn.gap_before": "gap before this segment",
    "warn.overlap": "overlaps another task on its destination",
    "handoff": "hand-off",
    "now": "now",
    "health": "health",
    "schedules.none": "No schedules.",
    "schedule.configured": "Configuration",
    "schedule.file": "File",
    "schedule.not_available": "not available",
    "schedule.segments": "Segments",
    "schedule.events": "Event history",
    "schedule.restarts": "Restart history",
    "schedule.plan": "plan --live",
    "schedule.plan_na": "The plan --live diff is not available from this daemon.",
    "schedule.plan_daemon": "The daemon's view: what it would do now, decided over what it last saw of the platform "
    "(listed {listed}); nothing is asked of the platform for this.",
    "schedule.plan_none": "Nothing to do: the platform matches the plan.",
    "col.action": "Action",
    "col.reason": "Reason",
    "schedule.back": "← Timeline",
    "col.segment": "Segment",
    "col.window": "Window",
    "col.task": "Task id",
    "col.state": "State",
    "col.status": "Platform status",
    "col.attempts": "Attempts",
    "col.error": "Last error",
    "col.request": "Request id",
    "col.time": "Time",
    "col.kind": "Kind",
    "col.detail": "Detail",
    "col.next": "Next action",
    "field.id": "Id",
    "field.title": "Title",
    "field.state": "State",
    "field.group": "Group",
    "field.enabled": "Enabled",
    "field.problems": "Problems",
    "none": "none",
    "loading": "Loading…",
    "error.load": "Could not load the status: {message}",
}

_ZH: dict[str, str] = {
    "app": "relayd 控制台",
    "login.title": "登录",
    "login.token": "API 令牌",
    "login.help": "设置中的 api_token，或状态文件旁的 api_token 文件。",
    "login.submit": "登录",
    "login.wrong": "令牌不正确。",
    "login.cross_site": "登录被拒绝：表单不是从本控制台提交的。",
    "login.disabled": "控制台已停用：守护进程没有配置 api_token。",
    "logout": "退出",
    "nav.timeline": "时间线",
    "lang.switch": "English",
    "tz.label": "时区",
    "tz.browser": "浏览器",
    "zoom.6h": "6 小时",
    "zoom.1d": "1 天",
    "zoom.1w": "1 周",
    "zoom.all": "全部",
    "pan.back": "◀ 更早",
    "pan.now": "现在",
    "pan.forward": "更晚 ▶",
    "filter.text": "按 ID 或标题筛选",
    "filter.group": "全部分组",
    "filter.state": "全部状态",
    "live.lost": "连接已断开，正在重连…",
    "live.on": "实时",
    "problems.title": "告警与问题",
    "problems.none": "没有问题。",
    "problems.config": "配置问题",
    "problems.alerts": "未关闭的告警",
    "problems.held": "被保护机制暂停的删除",
    "problems.conflicts": "安装冲突",
    "problems.failed": "失败的分段",
    "problems.stalled": "流已中断",
    "health.stalled": "已中断",
    "problems.warnings": "配置警告",
    "problems.since": "自 {at} 起",
    "severity.critical": "严重",
    "severity.warning": "警告",
    "severity.info": "提示",
    "action.release": "放行暂停的删除",
    "action.retry": "立即重试",
    "action.confirm": "确认",
    "action.cancel": "取消",
    "action.confirm_retry": "立即重试分段 {key}？",
    "action.confirm_release": "放行所有暂停的删除？相应任务将被停止并删除。",
    "action.done": "已完成。",
    "action.refused": "被拒绝：{message}",
    "state.planned": "已计划",
    "state.created": "已创建",
    "state.relaying": "转推中",
    "state.failing": "重试中",
    "state.failed": "失败",
    "state.ended": "已结束",
    "state.deleted": "已删除",
    "warn.gap_before": "与上一分段之间有空档",
    "warn.overlap": "与同一目标的其他任务重叠",
    "handoff": "交接",
    "now": "现在",
    "health": "健康",
    "schedules.none": "没有计划。",
    "schedule.configured": "配置",
    "schedule.file": "文件",
    "schedule.not_available": "不可用",
    "schedule.segments": "分段",
    "schedule.events": "事件历史",
    "schedule.restarts": "重启历史",
    "schedule.plan": "plan --live",
    "schedule.plan_na": "此守护进程未提供 plan --live 差异。",
    "schedule.plan_daemon": "守护进程的视角:按它最近一次看到的平台状态(列出于 {listed})现在会做的操作;不为此调用平台。",
    "schedule.plan_none": "无需操作:平台与计划一致。",
    "col.action": "操作",
    "col.reason": "原因",
    "schedule.back": "← 时间线",
    "col.segment": "分段",
    "col.window": "时间窗",
    "col.task": "任务 ID",
    "col.state": "状态",
    "col.status": "平台状态",
    "col.attempts": "尝试次数",
    "col.error": "最近错误",
    "col.request": "请求 ID",
    "col.time": "时间",
    "col.kind": "类型",
    "col.detail": "详情",
    "col.next": "下一步",
    "field.id": "ID",
    "field.title": "标题",
    "field.state": "状态",
    "field.group": "分组",
    "field.enabled": "启用",
    "field.problems": "问题",
    "none": "无",
    "loading": "加载中…",
    "error.load": "无法加载状态：{message}",
}

MESSAGES: dict[Lang, dict[str, str]] = {Lang.EN: _EN, Lang.ZH: _ZH}


def _weighted(accept_language: str) -> list[tuple[float, int, str]]:
    ranked = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, position, tag.strip().lower()))
    return sorted(ranked)


def pick_language(cookie: str | None, accept_language: str | None) -> Lang:
    """The switch's choice if valid, else the browser's best language we speak, else English."""
    if cookie in {lang.value for lang in Lang}:
        return Lang(cookie)
    for negative_weight, _, tag in _weighted(accept_language or ""):
        primary = tag.split("-")[0]
        if negative_weight < 0 and primary in {lang.value for lang in Lang}:
            return Lang(primary)
    return Lang.EN
