"""The deal process as a file: the JSON definition format of a script.

Plain code, no ORM: the schema of the document, its canonical text (so that
export -> import -> export is byte-identical) and the structural checks of a
file (types, unknown keys, step keys). Resolving the names a file refers to
(stages, activity types, fields, templates, users) is the model's work
(``crm.deal.script.definition.mixin``).

A document::

    {
      "format": "deal_stages.process",
      "format_version": 2,
      "script": {"name": ..., "strict_order": true, ...},
      "steps": [{"key": "proposal", "name": ..., "stage": "Proposal", ...}, ...]
    }

Texts are written in English; their translations travel beside them, in a
``translations`` object of the script, a step, a checklist item or an
activity: ``{"ru_RU": {"name": "..."}}`` (only the translatable texts of that
object, only the values that differ from the English one).

References are written as names a consultant can type: stages and sales
teams by name, fields by technical name, users by login, activity types,
templates, server actions and hand-off endpoints by XML id (``module.name``)
or by name.
"""

import json
import math
import re
from collections import Counter

FORMAT = "deal_stages.process"
FORMAT_VERSION = 2
# the versions this code reads: 1 lacks the translations and hand-offs,
# which then take their defaults
READABLE_FORMAT_VERSIONS = (1, 2)

# (key, kind, default); kinds: str (required text), text (text or null),
# html, bool, int, number, ref (a name or null), refs (list of names),
# key (a step key or null), keys (list of step keys), choice:<a|b|...>,
# list:<sub schema>, translations:<field|field...> ({lang: {field: text}})
SCRIPT_SCHEMA = (
    ("name", "str", None),
    ("teams", "refs", []),
    ("strict_order", "bool", True),
    ("note", "html", ""),
    ("review_url", "text", None),
    ("sla_working_time", "bool", True),
    ("sla_warning_percent", "int", 80),
    ("sla_escalation_hours", "number", 0),
    ("sla_escalation_user", "ref", None),
    ("return_step_increase", "key", None),
    ("return_step_decrease", "key", None),
    ("return_step_correction", "key", None),
    ("return_step_other", "key", None),
    ("translations", "translations:name", {}),
)
STEP_SCHEMA = (
    ("key", "str", None),
    ("name", "str", None),
    ("stage", "str", None),
    ("sla_hours", "number", 0),
    ("cancel_activities_on_exit", "bool", True),
    ("require_activities_done", "bool", False),
    ("required_fields", "refs", []),
    ("mail_template", "ref", None),
    ("mail_mode", "choice:auto|propose", "auto"),
    ("server_actions", "refs", []),
    ("back_steps", "keys", []),
    ("is_feedback_step", "bool", False),
    ("auto_advance_domain", "text", None),
    ("auto_advance_label", "text", None),
    ("auto_advance_required", "bool", False),
    ("lost_reason_required", "bool", False),
    ("lost_mail_template", "ref", None),
    ("handoff_endpoint", "ref", None),
    ("handoff_required", "bool", False),
    ("checks", "list:check", []),
    ("activities", "list:activity", []),
    ("translations", "translations:name|auto_advance_label", {}),
)
CHECK_SCHEMA = (
    ("name", "str", None),
    ("required", "bool", True),
    ("translations", "translations:name", {}),
)
ACTIVITY_SCHEMA = (
    ("trigger", "choice:enter|lost|sla|change", "enter"),
    ("activity_type", "str", None),
    ("summary", "text", None),
    ("note", "html", ""),
    ("deadline_days", "int", 0),
    ("deadline_working_days", "bool", False),
    ("assign_to", "choice:salesperson|team_leader|user", "salesperson"),
    ("user", "ref", None),
    ("reentry", "choice:once|always", "once"),
    ("translations", "translations:summary|note", {}),
)
SUB_SCHEMAS = {"check": CHECK_SCHEMA, "activity": ACTIVITY_SCHEMA}
# the numbers' bounds (inclusive); a number is finite in any case
RANGES = {
    "sla_warning_percent": (0, 99),
    "sla_escalation_hours": (0, 87600),  # ten years
    "sla_hours": (0, 87600),
    "deadline_days": (0, 3650),
}
# a process file is a few kilobytes: these bound what one import may cost
MAX_BYTES = 5 * 1024 * 1024
MAX_STEPS = 500
RETURN_STEP_KEYS = tuple(key for key, kind, _default in SCRIPT_SCHEMA if kind == "key")
# a language code as Odoo names it: en_US, ru_RU, sr@latin, es_419
LANG_CODE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?(@[a-z]+)?$")


def dumps(document):
    """The canonical text of a document (keys in schema order, UTF-8 names)."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _type_ok(kind, value):
    if kind == "str":
        return isinstance(value, str) and bool(value.strip())
    if kind in ("text", "ref", "key"):
        return value is None or isinstance(value, str)
    if kind == "html":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int", "number"):
        number = int if kind == "int" else (int, float)
        # 1e400 is read as infinity
        return isinstance(value, number) and not isinstance(value, bool) and math.isfinite(value)
    if kind in ("refs", "keys"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind.startswith("choice:"):
        return value in kind[7:].split("|")
    if kind.startswith("list:"):
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if kind.startswith("translations:"):
        return isinstance(value, dict) and all(
            isinstance(lang, str)
            and LANG_CODE.match(lang)
            and isinstance(texts, dict)
            and all(isinstance(text, str) for text in texts.values())
            for lang, texts in value.items()
        )
    raise ValueError(kind)


def _expected(kind):
    """How a problem names the expected type (English; the model translates
    the sentence around it)."""
    if kind.startswith("choice:"):
        return " | ".join(kind[7:].split("|"))
    return {
        "str": "text",
        "text": "text or null",
        "ref": "name or null",
        "key": "step key or null",
        "html": "text",
        "bool": "true | false",
        "int": "integer",
        "number": "number",
        "refs": "list of names",
        "keys": "list of step keys",
    }.get(
        kind,
        "{language: {text: translation}}"
        if kind.startswith("translations:")
        else "list of objects",
    )


def _default(value):
    return type(value)(value) if isinstance(value, (list, dict)) else value


def _normalize(data, schema, where, problems):
    """``data`` with every key of ``schema`` (defaults filled in), problems appended."""
    known = {key for key, _kind, _default in schema}
    for key in data:
        if key not in known:
            problems.append(("unknown_key", where, key))
    result = {}
    for key, kind, default in schema:
        if key not in data:
            if default is None and kind == "str":
                problems.append(("missing", where, key))
            result[key] = _default(default)
            continue
        value = data[key]
        if not _type_ok(kind, value):
            problems.append(("type", where, f"{key}: {_expected(kind)}"))
            result[key] = _default(default)
            continue
        if key in RANGES and not RANGES[key][0] <= value <= RANGES[key][1]:
            problems.append(("type", where, "{}: {} to {}".format(key, *RANGES[key])))
            result[key] = _default(default)
            continue
        if kind.startswith("list:"):
            sub_schema = SUB_SCHEMAS[kind[5:]]
            value = [
                _normalize(item, sub_schema, f"{where} / {key} {index}", problems)
                for index, item in enumerate(value, start=1)
            ]
        elif kind.startswith("translations:"):
            allowed = kind.split(":", 1)[1].split("|")
            for lang, texts in value.items():
                for name in texts:
                    if name not in allowed:
                        problems.append(("unknown_key", f"{where} / {key} {lang}", name))
            value = {
                lang: {name: text for name, text in texts.items() if name in allowed}
                for lang, texts in value.items()
            }
        result[key] = value
    return result


def _load(text):
    """(the JSON object of ``text``, None) or (None, the problem that stops
    the reading): too large, not JSON, too deeply nested, not an object,
    too many steps."""
    if isinstance(text, str) and len(text) > MAX_BYTES // 4:
        size = len(text.encode(errors="replace"))
    else:
        size = len(text) if isinstance(text, (bytes, bytearray)) else 0
    if size > MAX_BYTES:
        return None, ("size", "", MAX_BYTES // (1024 * 1024))
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        return None, ("depth", "", "")
    except (TypeError, ValueError) as error:
        return None, ("json", "", str(error))
    if not isinstance(data, dict):
        return None, ("format", "", "")
    if isinstance(data.get("steps"), list) and len(data["steps"]) > MAX_STEPS:
        return None, ("steps", "", MAX_STEPS)
    return data, None


def _refuse_constant(name):
    # NaN, Infinity, -Infinity: JavaScript values, not JSON numbers
    raise ValueError(f"{name} is not a number")


def parse(text):
    """Read a definition: (normalized document or None, [problems]).

    A problem is a tuple (code, where, detail); codes: ``json``, ``format``,
    ``unknown_key``, ``missing``, ``type``, ``duplicate_key``, ``duplicate_stage``,
    ``unknown_step``,
    ``no_step``, and ``size``, ``depth``, ``steps`` for a file too large,
    too deeply nested or with too many steps (read no further). Every
    problem of the file is listed, not only the first.
    """
    data, problem = _load(text)
    if problem:
        return None, [problem]
    problems = []
    version = data.get("format_version")
    if (
        data.get("format") != FORMAT
        or isinstance(version, bool)
        or version not in READABLE_FORMAT_VERSIONS
    ):
        problems.append(("format", "", f"{data.get('format')} {data.get('format_version')}"))
    for key in data:
        if key not in ("format", "format_version", "script", "steps"):
            problems.append(("unknown_key", "", key))
    script = data.get("script")
    if not isinstance(script, dict):
        problems.append(("missing", "", "script"))
        script = {}
    steps = data.get("steps")
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        problems.append(("missing", "", "steps"))
        steps = []
    script = _normalize(script, SCRIPT_SCHEMA, "script", problems)
    steps = [
        _normalize(step, STEP_SCHEMA, f"step {step.get('key') or index}", problems)
        for index, step in enumerate(steps, start=1)
    ]
    if not steps:
        problems.append(("no_step", "", ""))
    keys = [step["key"] for step in steps if step["key"]]
    for key in sorted({key for key in keys if keys.count(key) > 1}):
        problems.append(("duplicate_key", "", key))
    # one step per stage in a script
    stages = Counter(step["stage"] for step in steps if step["stage"])
    for stage in sorted(stage for stage, count in stages.items() if count > 1):
        problems.append(("duplicate_stage", "", stage))
    known = set(keys)
    for step in steps:
        for back in step["back_steps"]:
            if back not in known:
                problems.append(("unknown_step", f"step {step['key']}", back))
    for key in RETURN_STEP_KEYS:
        if script[key] and script[key] not in known:
            problems.append(("unknown_step", "script", script[key]))
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "script": script}
    document["steps"] = steps
    return document, problems
