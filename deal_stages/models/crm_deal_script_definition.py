import base64
import re

from odoo import Command, api, models
from odoo.exceptions import AccessError, UserError
from odoo.fields import Domain

from ..tools import ensure_one
from ..tools import script_definition as definition

RETURN_KINDS = ("increase", "decrease", "correction", "other")


class CrmDealScriptDefinitionMixin(models.AbstractModel):
    """The process as a file (mixed into ``crm.deal.script``): export a script
    as a JSON definition, import one as a new draft.

    The format is described in ``tools/script_definition.py`` and in the
    readme; the texts are written in the source language (English), their
    translations beside them, so that export -> import -> export gives the
    same bytes and the process keeps its texts in every language (the
    translations: ``crm_deal_script_definition_translation.py``).
    """

    _name = "crm.deal.script.definition.mixin"
    _description = "Deal Script Definition File"
    _inherit = ["crm.deal.script.definition.translation.mixin"]

    # ------------------------------------------------------------
    # EXPORT
    # ------------------------------------------------------------

    @api.model
    def _deal_ref_name(self, record):
        """How a file names ``record``: its XML id, else its name (or None)."""
        if not record:
            return None
        xmlid = record.get_external_id().get(record.id)
        if xmlid and not xmlid.startswith("__"):
            return xmlid
        return record.display_name

    def export_definition(self):
        """The script as a JSON definition (text): see ``import_definition``."""
        self._deal_check_manager()
        ensure_one(self)
        # read below as the superuser: a script the user may read
        self.check_access("read")
        # the steps' technical links (fields, server actions, templates) are
        # not readable by sales administrators, whose right was checked above
        script = self.sudo().with_context(lang="en_US")
        steps = script.step_ids.sorted(lambda s: (s.sequence, s.id))
        translations = {}
        for records in (script, steps, steps.check_ids, steps.activity_template_ids):
            translations.update(self._deal_stored_translations(records))
        document = {
            "format": definition.FORMAT,
            "format_version": definition.FORMAT_VERSION,
            "script": {
                "name": script.name,
                "teams": sorted(script.team_ids.mapped("name")),
                "strict_order": script.strict_order,
                "note": script.note or "",
                "review_url": script.review_url or None,
                "sla_working_time": script.sla_working_time,
                "sla_warning_percent": script.sla_warning_percent,
                "sla_escalation_hours": script.sla_escalation_hours,
                "sla_escalation_user": script.sla_escalation_user_id.login or None,
                **{
                    f"return_step_{kind}": script[f"return_step_{kind}_id"].step_key or None
                    for kind in RETURN_KINDS
                },
                **self._deal_translations_entry(translations, script),
            },
            "steps": [self._deal_export_step(step, translations) for step in steps],
        }
        return definition.dumps(document)

    @api.model
    def _deal_export_step(self, step, translations):
        return {
            "key": step.step_key,
            "name": step.name,
            # a template step has no stage yet: the stage made from it takes its name
            "stage": step.stage_id.name or step.name,
            "sla_hours": step.sla_hours,
            "cancel_activities_on_exit": step.cancel_activities_on_exit,
            "require_activities_done": step.require_activities_done,
            "required_fields": sorted(step.required_field_ids.mapped("name")),
            "mail_template": self._deal_ref_name(step.mail_template_id),
            "mail_mode": step.mail_mode or "auto",
            "server_actions": [self._deal_ref_name(action) for action in step.server_action_ids],
            "back_steps": [
                back.step_key for back in step.back_step_ids.sorted(lambda s: (s.sequence, s.id))
            ],
            "is_feedback_step": step.is_feedback_step,
            "auto_advance_domain": step.auto_advance_domain or None,
            "auto_advance_label": step.auto_advance_label or None,
            "auto_advance_required": step.auto_advance_required,
            "lost_reason_required": step.lost_reason_required,
            "lost_mail_template": self._deal_ref_name(step.lost_mail_template_id),
            "handoff_endpoint": self._deal_ref_name(step.handoff_endpoint_id),
            "handoff_required": step.handoff_required,
            "checks": [
                {
                    "name": check.name,
                    "required": check.required,
                    **self._deal_translations_entry(translations, check),
                }
                for check in step.check_ids.sorted(lambda c: (c.sequence, c.id))
            ],
            "activities": [
                {
                    "trigger": activity.trigger,
                    "activity_type": self._deal_ref_name(activity.activity_type_id),
                    "summary": activity.summary or None,
                    "note": activity.note or "",
                    "deadline_days": activity.deadline_days,
                    "deadline_working_days": activity.deadline_working_days,
                    "assign_to": activity.assign_to,
                    "user": activity.user_id.login or None,
                    "reentry": activity.reentry,
                    **self._deal_translations_entry(translations, activity),
                }
                for activity in step.activity_template_ids.sorted(lambda a: (a.sequence, a.id))
            ],
            **self._deal_translations_entry(translations, step),
        }

    # ------------------------------------------------------------
    # IMPORT
    # ------------------------------------------------------------

    @api.model
    def import_definition(self, text):
        """Create a draft script from a JSON definition; returns its id.

        A file with problems (not JSON, unknown keys, unknown fields,
        templates or activity types, duplicate step keys, return steps that
        do not exist...) is refused with one message listing them all, and
        creates nothing.
        """
        self._deal_check_manager()
        self.check_access("create")
        document, problems = definition.parse(text)
        messages = [self._deal_definition_problem(*problem) for problem in problems]
        if document is not None:
            # the names are resolved as the superuser, in the caller's
            # companies: Odoo checks a company list sent in the context only
            # without sudo (here, reading self.env.companies)
            resolved = (
                self.sudo()
                .with_context(allowed_company_ids=self.env.companies.ids)
                ._deal_resolve_definition(document, messages)
            )
        if messages:
            raise UserError(
                self.env._(
                    "The process file cannot be imported:\n%(problems)s",
                    problems="\n".join(f"- {message}" for message in messages),
                )
            )
        self._deal_check_definition_actions(resolved)
        return self._deal_create_from_definition(document, resolved).id

    @api.model
    def _deal_check_definition_actions(self, resolved):
        """The server actions a file names are attached only by who may read
        them (administrators, Settings), as on the step form: the draft is
        created by the superuser, whose constraint lets anything through."""
        if self.env.su:
            return
        for (kind, _ref), record in resolved.items():
            if kind == "action" and record and not record.with_env(self.env).has_access("read"):
                raise AccessError(
                    self.env._(
                        "Only administrators (Settings) can attach server actions to a step: "
                        "you may not use the action %(action)s.",
                        action=record.name,
                    )
                )

    @api.model
    def _deal_definition_problem(self, code, where, detail):
        where = f"{self._deal_definition_where(where)}: " if where else ""
        if code == "type":
            detail = self._deal_definition_expected(detail)
        sentences = {
            "json": self.env._("The file is not valid JSON (%(detail)s)."),
            "format": self.env._(
                "The file is not a deal process definition (format %(format)s, "
                "version %(version)s expected)."
            ),
            "unknown_key": self.env._("%(where)sunknown key “%(detail)s”."),
            "missing": self.env._("%(where)s“%(detail)s” is missing."),
            "type": self.env._("%(where)swrong value for %(detail)s."),
            "duplicate_key": self.env._("Two steps have the key “%(detail)s”."),
            "duplicate_stage": self.env._("Two steps are on the stage “%(detail)s”."),
            "unknown_step": self.env._("%(where)sthe return step “%(detail)s” does not exist."),
            "no_step": self.env._("The process has no step."),
            "size": self.env._(
                "The file is larger than %(detail)s MB: a process file is much smaller."
            ),
            "depth": self.env._("The file is nested too deeply to be a process file."),
            "steps": self.env._(
                "The process has more than %(detail)s steps, the most a file may hold."
            ),
        }
        return sentences[code] % {
            "where": where,
            "detail": detail,
            "format": definition.FORMAT,
            "version": definition.FORMAT_VERSION,
        }

    @api.model
    def _deal_definition_where(self, where):
        """A problem's place in the file in the reader's language: "step KEY"
        is a word; the rest (the file's keys, positions, language codes) is
        the file's own text."""
        head, sep, rest = where.partition(" / ")
        if head.startswith("step "):
            head = self.env._("step %(key)s", key=head[5:])
        return head + sep + rest

    @api.model
    def _deal_definition_expected(self, detail):
        """``key: expected`` of a wrong value with the expected kind in the
        reader's language (choices, true | false and JSON shapes are the
        file's own text)."""
        key, sep, expected = detail.partition(": ")
        words = {
            "text": self.env._("text"),
            "text or null": self.env._("text or null"),
            "name or null": self.env._("name or null"),
            "step key or null": self.env._("step key or null"),
            "integer": self.env._("integer"),
            "number": self.env._("number"),
            "list of names": self.env._("list of names"),
            "list of step keys": self.env._("list of step keys"),
            "list of objects": self.env._("list of objects"),
        }
        low, to, high = expected.partition(" to ")
        if to:
            expected = self.env._("%(low)s to %(high)s", low=low, high=high)
        return key + sep + words.get(expected, expected)

    def _deal_find(self, model, ref, domain=None):
        """The record a file names ``ref`` (XML id or name), or an empty recordset."""
        Model = self.env[model].with_context(lang="en_US", active_test=False)
        if "." in ref:
            record = self.env.ref(ref, raise_if_not_found=False)
            if record is not None and record._name == model:
                # the same records as by name (the model, the importer's
                # companies, an active endpoint...): an XML id is no way around
                record = record.with_env(Model.env).filtered_domain(Domain(domain or []))
                if record:
                    return record
        name_field = Model._rec_name or "name"
        return Model.search(Domain(name_field, "=", ref) & Domain(domain or []), limit=1)

    def _deal_resolve_definition(self, document, messages):
        """The records the file names: {(kind, name): record}; unknown ones
        are appended to ``messages``."""
        resolved = {}

        def find(kind, model, ref, where, domain=None):
            if ref is None or (kind, ref) in resolved:
                return
            record = self._deal_find(model, ref, domain)
            if not record:
                messages.append(
                    self.env._(
                        "%(where)s: unknown %(kind)s “%(ref)s”.",
                        where=where,
                        kind=kind_names[kind],
                        ref=ref,
                    )
                )
            resolved[kind, ref] = record

        kind_names = {
            "team": self.env._("sales team"),
            "user": self.env._("user"),
            "field": self.env._("deal field"),
            "template": self.env._("email template"),
            "action": self.env._("server action"),
            "activity_type": self.env._("activity type"),
            "endpoint": self.env._("hand-off endpoint"),
        }
        script = document["script"]
        companies = self.env.companies.ids
        # teams and users of the importer's companies only: the file is read
        # by the superuser, who sees every company's
        for team in script["teams"]:
            find("team", "crm.team", team, "script", [("company_id", "in", [False, *companies])])
        if script["sla_escalation_user"]:
            resolved["user", script["sla_escalation_user"]] = self._deal_find_user(
                script["sla_escalation_user"]
            )
            if not resolved["user", script["sla_escalation_user"]]:
                messages.append(
                    self.env._("script: unknown user “%(ref)s”.", ref=script["sla_escalation_user"])
                )
        fields_by_name = {
            field.name: field
            for field in self.env["ir.model.fields"].search(
                [("model", "=", "crm.lead"), ("store", "=", True)]
            )
        }
        for step in document["steps"]:
            self._deal_resolve_step(step, find, fields_by_name, resolved, messages)
        if not script["teams"]:
            self._deal_check_definition_stages(document, messages)
        self._deal_check_languages(document, messages)
        return resolved

    def _deal_check_definition_stages(self, document, messages):
        """A file naming no sales team creates no stage: a stage without a
        team would appear in every team's pipeline (as installing the addon,
        importing a file adds nothing to the pipelines of a database). Its
        steps use the existing stages of their names; the missing ones are
        listed in ``messages``."""
        names = [step["stage"] for step in document["steps"] if step["stage"]]
        found = set(
            self.env["crm.stage"]
            .with_context(lang="en_US")
            .search([("name", "in", names)])
            .mapped("name")
        )
        missing = [name for name in dict.fromkeys(names) if name not in found]
        if missing:
            messages.append(
                self.env._(
                    "The file names no sales team, so its steps use existing stages, and "
                    "these do not exist: %(stages)s. Name the sales teams in the file (their "
                    "missing stages are then created in their pipelines), or create the "
                    "stages first.",
                    stages=", ".join(f"“{name}”" for name in missing),
                )
            )

    def _deal_find_user(self, login):
        """The internal user of the importer's companies with this login."""
        return self.env["res.users"].search(
            [
                ("login", "=", login),
                ("share", "=", False),
                ("company_ids", "in", self.env.companies.ids),
            ],
            limit=1,
        )

    def _deal_resolve_step(self, step, find, fields_by_name, resolved, messages):
        """Resolve the names one step of a file uses (see ``_deal_resolve_definition``)."""
        where = self.env._("step %(key)s", key=step["key"])
        for name in step["required_fields"]:
            if name not in fields_by_name:
                messages.append(
                    self.env._("%(where)s: unknown deal field “%(ref)s”.", where=where, ref=name)
                )
            resolved["field", name] = fields_by_name.get(name)
        for ref in (step["mail_template"], step["lost_mail_template"]):
            find("template", "mail.template", ref, where, [("model", "=", "crm.lead")])
        for ref in step["server_actions"]:
            find("action", "ir.actions.server", ref, where, [("model_name", "=", "crm.lead")])
        # an endpoint of the importing user's companies, not archived: the
        # file names it, the database holds its address and secret
        find(
            "endpoint",
            "crm.deal.handoff.endpoint",
            step["handoff_endpoint"],
            where,
            [("company_id", "in", self.env.companies.ids), ("active", "=", True)],
        )
        for activity in step["activities"]:
            # as the template's field allows: types of deals or of any document
            find(
                "activity_type",
                "mail.activity.type",
                activity["activity_type"],
                where,
                [("res_model", "in", [False, "crm.lead"])],
            )
            login = activity["user"]
            if login and ("user", login) not in resolved:
                resolved["user", login] = self._deal_find_user(login)
                if not resolved["user", login]:
                    messages.append(
                        self.env._("%(where)s: unknown user “%(ref)s”.", where=where, ref=login)
                    )
        if step["auto_advance_domain"]:
            problem = self.env["crm.deal.script.step"]._deal_domain_problem(
                step["auto_advance_domain"]
            )
            if problem:
                messages.append(
                    self.env._(
                        "%(where)s: the auto-advance condition is not valid: %(error)s",
                        where=where,
                        error=problem,
                    )
                )

    def _deal_definition_stage(self, name, teams, created):
        """The stage named ``name`` in the pipeline of ``teams``, created there
        if missing. Without teams: an existing stage of that name, a shared
        one first (its absence was refused by ``_deal_check_definition_stages``)."""
        Stage = self.env["crm.stage"].with_context(lang="en_US")
        stages = Stage.search([("name", "=", name)]).filtered(
            lambda stage: not stage.team_ids or not (teams - stage.team_ids)
        )
        # a stage of these teams rather than a shared one; with no team, a
        # shared one, which fits whatever teams the draft is given later
        stage = stages.sorted(
            lambda s: (not s.team_ids if teams else bool(s.team_ids), s.sequence, s.id)
        )[:1]
        if not stage and teams:
            if name not in created:
                created[name] = Stage.create(
                    {"name": name, "sequence": 50 + len(created), "team_ids": teams.ids}
                )
            stage = created[name]
        return stage

    def _deal_create_from_definition(self, document, resolved):
        script = document["script"]
        teams = self.env["crm.team"].union(*(resolved["team", name] for name in script["teams"]))
        created = {}
        Self = self.with_context(lang="en_US")
        steps_vals = [
            Command.create(
                self._deal_definition_step_vals(
                    index,
                    step,
                    self._deal_definition_stage(step["stage"], teams, created),
                    resolved,
                )
            )
            for index, step in enumerate(document["steps"], start=1)
        ]
        user = script["sla_escalation_user"]
        # the technical links (fields, server actions) are set by the
        # superuser: sales administrators may not read them (right checked above)
        draft = (
            Self.sudo()
            .create(
                {
                    "name": script["name"],
                    "state": "draft",
                    "team_ids": [Command.set(teams.ids)],
                    "strict_order": script["strict_order"],
                    "note": script["note"] or False,
                    "review_url": script["review_url"] or False,
                    "sla_working_time": script["sla_working_time"],
                    "sla_warning_percent": script["sla_warning_percent"],
                    "sla_escalation_hours": script["sla_escalation_hours"],
                    "sla_escalation_user_id": user and resolved["user", user].id,
                    "step_ids": steps_vals,
                }
            )
            .with_env(self.env)
        )
        step_by_key = {step.step_key: step for step in draft.step_ids}
        for step in document["steps"]:
            if step["back_steps"]:
                step_by_key[step["key"]].back_step_ids = [
                    Command.set([step_by_key[key].id for key in step["back_steps"]])
                ]
        draft.write(
            {
                f"return_step_{kind}_id": step_by_key[script[f"return_step_{kind}"]].id
                for kind in RETURN_KINDS
                if script[f"return_step_{kind}"]
            }
        )
        self._deal_import_translations(draft, document)
        return draft

    def _deal_definition_step_vals(self, index, step, stage, resolved):
        """Values of one step of the file (with its checklist and activities)."""
        return {
            "sequence": index,
            "step_key": step["key"],
            "name": step["name"],
            "stage_id": stage.id,
            "sla_hours": step["sla_hours"],
            "cancel_activities_on_exit": step["cancel_activities_on_exit"],
            "require_activities_done": step["require_activities_done"],
            "required_field_ids": [
                Command.set([resolved["field", n].id for n in step["required_fields"]])
            ],
            "mail_template_id": step["mail_template"]
            and resolved["template", step["mail_template"]].id,
            "mail_mode": step["mail_mode"],
            "server_action_ids": [
                Command.set([resolved["action", a].id for a in step["server_actions"]])
            ],
            "is_feedback_step": step["is_feedback_step"],
            "auto_advance_domain": step["auto_advance_domain"] or False,
            "auto_advance_label": step["auto_advance_label"] or False,
            "auto_advance_required": step["auto_advance_required"],
            "lost_reason_required": step["lost_reason_required"],
            "lost_mail_template_id": step["lost_mail_template"]
            and resolved["template", step["lost_mail_template"]].id,
            "handoff_endpoint_id": step["handoff_endpoint"]
            and resolved["endpoint", step["handoff_endpoint"]].id,
            "handoff_required": step["handoff_required"],
            "check_ids": [
                Command.create(
                    {
                        "sequence": i,
                        "name": check["name"],
                        "required": check["required"],
                    }
                )
                for i, check in enumerate(step["checks"], start=1)
            ],
            "activity_template_ids": [
                Command.create(
                    {
                        "sequence": i,
                        "trigger": activity["trigger"],
                        "activity_type_id": resolved["activity_type", activity["activity_type"]].id,
                        "summary": activity["summary"] or False,
                        "note": activity["note"] or False,
                        "deadline_days": activity["deadline_days"],
                        "deadline_working_days": activity["deadline_working_days"],
                        "assign_to": activity["assign_to"],
                        "user_id": activity["user"] and resolved["user", activity["user"]].id,
                        "reentry": activity["reentry"],
                    }
                )
                for i, activity in enumerate(step["activities"], start=1)
            ],
        }

    def action_open_export_definition(self):
        """The "Export" button: the process file to download."""
        text = self.export_definition()
        name = re.sub(r"[^\w-]+", "_", self.name or "process")
        wizard = self.env["crm.deal.script.definition"].create(
            {
                "mode": "export",
                "file": base64.b64encode(text.encode()),
                "filename": f"{name}_v{self.version}.json",
            }
        )
        return self._deal_definition_action(wizard)

    def action_open_import_definition(self):
        """The "Import" button: a process file becomes a new draft."""
        self._deal_check_manager()
        wizard = self.env["crm.deal.script.definition"].create({"mode": "import"})
        return self._deal_definition_action(wizard)

    def _deal_definition_action(self, wizard):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Process File"),
            "res_model": "crm.deal.script.definition",
            "res_id": wizard.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
        }
