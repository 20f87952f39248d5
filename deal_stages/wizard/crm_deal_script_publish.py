import base64

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import ensure_one


class CrmDealScriptPublish(models.TransientModel):
    """Publish a draft version: first a dry run of what happens to the deals
    in flight on the older versions, then the publication."""

    _name = "crm.deal.script.publish"
    _description = "Publish a Deal Script Version"

    script_id = fields.Many2one(
        "crm.deal.script", string="Draft", required=True, readonly=True, ondelete="cascade"
    )
    previous_id = fields.Many2one(
        "crm.deal.script", string="Published Version", compute="_compute_previous_id"
    )
    in_flight = fields.Selection(
        [
            ("keep", "Keep them on their version"),
            ("migrate", "Migrate them to this version"),
        ],
        string="Deals in Progress",
        default="keep",
        required=True,
        help="Keep: the deals already on their way finish on the version they "
        "started with. Migrate: they move to the step of this version with the "
        "same key (or the one chosen below).",
    )
    line_ids = fields.One2many(
        "crm.deal.script.publish.line",
        "wizard_id",
        string="Dry Run",
        compute="_compute_line_ids",
        store=True,
        readonly=False,
    )
    in_flight_count = fields.Integer(
        string="Deals on Older Versions",
        compute="_compute_in_flight_count",
        help="Deals in progress on the older versions of the process.",
    )
    teams_left_note = fields.Text(
        string="Teams Left Without a Process",
        compute="_compute_teams_left_note",
        help="The sales teams that follow the published version and not the "
        "draft: once it is published they follow no process.",
    )
    draft_map = fields.Json(compute="_compute_maps")
    published_map = fields.Json(compute="_compute_maps")

    @api.depends("script_id")
    def _compute_previous_id(self):
        for wizard in self:
            wizard.previous_id = (
                wizard.script_id and wizard.script_id._deal_published_of_process()[:1]
            )

    @api.depends("script_id")
    def _compute_teams_left_note(self):
        for wizard in self:
            script = wizard.script_id
            teams = script._deal_teams_left(script._deal_published_of_process()) if script else None
            wizard.teams_left_note = (
                self.env._(
                    "After publishing, the sales teams %(teams)s will follow no process: the "
                    "published version serves them and this draft does not, so their new "
                    "deals will get no script. Add them to the draft to keep them on the "
                    "process.",
                    teams=", ".join(teams.mapped("display_name")),
                )
                if teams
                else False
            )

    def _in_flight_leads(self):
        script = self.script_id
        if not script:
            return self.env["crm.lead"]
        older = (script._deal_process_versions() | script._deal_published_of_process()) - script
        return self.env["crm.lead"]._deal_in_flight(older)

    @api.depends("script_id")
    def _compute_in_flight_count(self):
        for wizard in self:
            wizard.in_flight_count = len(wizard._in_flight_leads())

    @api.depends("script_id")
    def _compute_line_ids(self):
        for wizard in self:
            script = wizard.script_id
            if not script:
                wizard.line_ids = False
                continue
            leads = wizard._in_flight_leads()
            new_by_key = {step.step_key: step for step in script.step_ids}
            wizard.line_ids = [fields.Command.clear()] + [
                fields.Command.create(
                    {
                        "from_step_id": step.id,
                        "to_step_id": new_by_key.get(step.step_key, step.browse()).id,
                    }
                )
                for step in leads.deal_step_id.sorted(
                    lambda s: (s.script_id.version, s.sequence, s.id)
                )
            ]

    @api.depends("script_id")
    @api.depends_context("lang")
    def _compute_maps(self):
        for wizard in self:
            wizard.draft_map = wizard.script_id._deal_process_map()
            wizard.published_map = wizard.previous_id._deal_process_map() or False

    def action_publish(self):
        ensure_one(self)
        # the lines map the deals that migrate: kept deals stay where they are
        self.script_id.action_publish(
            in_flight=self.in_flight,
            step_map=(self._step_map() or None) if self.in_flight == "migrate" else None,
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.deal.script",
            "res_id": self.script_id.id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def _step_map(self):
        """{old step key: new step key} as the dry run shows it. The method
        maps keys: a line without a step of the draft, or two versions' steps
        of one key sent to different steps, would move deals elsewhere than
        the dry run says, so they are refused with the list."""
        step_map, chosen, problems = {}, {}, []
        for line in self.line_ids.sorted(
            lambda l: (l.from_step_id.script_id.version, l.from_step_id.sequence, l.id)
        ):
            step, target = line.from_step_id, line.to_step_id
            if target.script_id != self.script_id:
                problems.append(
                    self.env._(
                        "No step of the new version for the step %(step)s (key %(key)s) of "
                        "version %(version)s: choose one in the dry run.",
                        step=step.name,
                        key=step.step_key,
                        version=step.script_id.version,
                    )
                )
                continue
            if chosen.setdefault(step.step_key, target) != target:
                problems.append(
                    self.env._(
                        "The steps with the key %(key)s go to one step of the new version: "
                        "choose the same step (%(first)s or %(second)s) for every version.",
                        key=step.step_key,
                        first=chosen[step.step_key].name,
                        second=target.name,
                    )
                )
                continue
            step_map[step.step_key] = target.step_key
        if problems:
            raise UserError(
                self.env._(
                    "The draft %(script)s cannot be published:\n%(problems)s",
                    script=self.script_id.display_name,
                    problems="\n".join(f"- {problem}" for problem in problems),
                )
            )
        return step_map


class CrmDealScriptPublishLine(models.TransientModel):
    """One step of an older version where deals stand, and where they go."""

    _name = "crm.deal.script.publish.line"
    _description = "Publish a Deal Script Version: Step"

    wizard_id = fields.Many2one("crm.deal.script.publish", required=True, ondelete="cascade")
    from_step_id = fields.Many2one("crm.deal.script.step", readonly=True)
    from_version = fields.Integer(related="from_step_id.script_id.version", string="Version")
    script_id = fields.Many2one(related="wizard_id.script_id")
    to_step_id = fields.Many2one(
        "crm.deal.script.step",
        domain="[('script_id', '=', script_id)]",
        help="The step of the new version the deals of this step move to when migrated.",
    )
    deal_count = fields.Integer(string="Deals", compute="_compute_dry_run")
    gate_fail_count = fields.Integer(
        string="Fail the New Gate",
        compute="_compute_dry_run",
        help="Deals that would not yet meet the exit requirements of their new step.",
    )
    activity_create_count = fields.Integer(string="Activities Created", compute="_compute_dry_run")
    activity_cancel_count = fields.Integer(
        string="Activities Cancelled", compute="_compute_dry_run"
    )

    @api.depends("from_step_id", "to_step_id")
    def _compute_dry_run(self):
        Lead = self.env["crm.lead"]
        for line in self:
            leads = Lead._deal_in_flight(line.from_step_id.script_id).filtered(
                lambda lead, step=line.from_step_id: lead.deal_step_id == step
            )
            line.deal_count = len(leads)
            new_step = line.to_step_id
            if not (leads and new_step):
                line.gate_fail_count = line.activity_create_count = 0
                line.activity_cancel_count = 0
                continue
            line.gate_fail_count = len(
                leads._deal_migration_gate_failures(line.from_step_id, new_step)
            )
            line.activity_create_count = len(leads) * len(
                new_step.activity_template_ids.filtered(lambda t: t.trigger == "enter")
            )
            line.activity_cancel_count = (
                self.env["mail.activity"]
                .sudo()
                .search_count(
                    [
                        ("res_model", "=", "crm.lead"),
                        ("res_id", "in", leads.ids),
                        ("deal_step_id", "=", line.from_step_id.id),
                    ]
                )
                if line.from_step_id.cancel_activities_on_exit
                else 0
            )


class CrmDealScriptDefinition(models.TransientModel):
    """Download a script as a process file, or upload one as a new draft."""

    _name = "crm.deal.script.definition"
    _description = "Deal Process File"

    mode = fields.Selection([("export", "Export"), ("import", "Import")], required=True)
    file = fields.Binary(readonly=True)
    filename = fields.Char()
    upload = fields.Binary(string="Process File")
    upload_name = fields.Char()

    def action_import(self):
        ensure_one(self)
        if not self.upload:
            raise UserError(self.env._("Choose the process file to import."))
        try:
            text = base64.b64decode(self.upload).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as error:
            raise UserError(self.env._("The process file is not a UTF-8 text file.")) from error
        draft_id = self.env["crm.deal.script"].import_definition(text)
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.deal.script",
            "res_id": draft_id,
            "view_mode": "form",
            "views": [(False, "form")],
        }
