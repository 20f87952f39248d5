from collections import defaultdict

from odoo import api, models
from odoo.exceptions import MissingError, UserError, ValidationError
from odoo.tools import SQL

from ..tools import DealMigration

# deals migrated per transaction by the cron (and per flush inline)
MIGRATE_BATCH_SIZE = 500


class CrmLeadDealVersion(models.AbstractModel):
    """Deals and the versions of their process (mixed into ``crm.lead``).

    A deal keeps the version it started with (``deal_script_id``): every rule
    reads that version's configuration, whatever was published since. It
    changes version only when a publication migrates it (cause ``migrate``).
    """

    _name = "crm.lead.deal.version"
    _description = "Deal Process Versions"

    @api.constrains("deal_script_id")
    def _check_deal_script_not_draft(self):
        for lead in self:
            if lead.deal_script_id.state == "draft":
                raise ValidationError(
                    self.env._(
                        "The script %(script)s is a draft: it drives no deal until it "
                        "is published.",
                        script=lead.deal_script_id.display_name,
                    )
                )

    # ------------------------------------------------------------
    # A DEAL'S SCRIPT AND STAGE AS WRITTEN (form, RPC, import)
    # ------------------------------------------------------------

    def _deal_verified_references(self, vals_list):
        """``vals_list`` with ``stage_id`` / ``deal_script_id`` checked as an
        RPC client or an import may send them: ids (or numeric text) of
        existing records, checked in one query per model for the batch, and a
        script that may drive the deals ``self`` (no retired version).
        Records pass as is (internal writes)."""
        vals_list = [dict(vals) for vals in vals_list]
        # labels first: a translated call inside the tuples confuses the term export
        stage_label = self.env._("stage")
        script_label = self.env._("deal script")
        for fname, model, label in (
            ("stage_id", "crm.stage", stage_label),
            ("deal_script_id", "crm.deal.script", script_label),
        ):
            given = [
                vals
                for vals in vals_list
                if vals.get(fname) and not isinstance(vals[fname], models.BaseModel)
            ]
            for vals in given:
                vals[fname] = self._deal_id_value(vals[fname], label)
            records = self.env[model].browse({vals[fname] for vals in given})
            unchecked = records
            if fname == "stage_id" and records:
                # a stage of a step exists (steps restrict its deletion, and
                # the cached config is cleared when a step changes): a move
                # into a step costs no query here
                known = self.env["crm.deal.script"]._deal_config().stage_ids
                unchecked = records.browse([id_ for id_ in records.ids if id_ not in known])
            missing = unchecked - unchecked.exists()
            if missing:
                raise MissingError(
                    self.env._(
                        "The %(label)s %(id)s does not exist.", label=label, id=missing[0].id
                    )
                )
            if fname == "deal_script_id":
                self._deal_verify_not_retired(records.filtered(lambda s: s.state == "retired"))
        return vals_list

    @api.model
    def _deal_id_value(self, value, label):
        """``value`` as a record id: a number, or a number as text."""
        if isinstance(value, str) and value.isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(
                self.env._(
                    "“%(value)s” is not a valid %(label)s: give its id (a number).",
                    value=repr(value)[:50],
                    label=label,
                )
            )
        return value

    def _deal_verify_not_retired(self, retired):
        """A retired version drives no new deal; the deals ``self`` already on
        it keep it (a rewrite of the same value)."""
        for script in retired:
            if not self or self.filtered(lambda lead, script=script: lead.deal_script_id != script):
                raise ValidationError(
                    self.env._(
                        "The script %(script)s is a retired version: a deal cannot be put on "
                        "it. New deals follow the published version of the process.",
                        script=script.display_name,
                    )
                )

    def copy_data(self, default=None):
        # a copy is a new deal: it follows the published version of its
        # team's process, not the retired one its original finishes on
        vals_list = super().copy_data(default=default)
        if "deal_script_id" not in (default or {}):
            for lead, vals in zip(self, vals_list, strict=True):
                if lead.deal_script_id.state == "retired":
                    vals.pop("deal_script_id", None)
        return vals_list

    def _deal_verify_script_team(self):
        """Only sales administrators give a deal the script of another team."""
        if self.env.su or self.env.user.has_group("sales_team.group_sale_manager"):
            return
        for lead in self:
            script = lead.deal_script_id
            if script.team_ids and lead.team_id not in script.team_ids:
                raise UserError(
                    self.env._(
                        "The script %(script)s is not a script of the sales team %(team)s of "
                        "the deal %(deal)s: choose a script of its team.",
                        script=script.display_name,
                        team=lead.team_id.display_name or self.env._("(none)"),
                        deal=lead.display_name,
                    )
                )

    @api.model
    def _deal_in_flight_domain(self, scripts):
        return [
            ("deal_script_id", "in", scripts.ids),
            ("deal_step_id", "!=", False),
            ("type", "=", "opportunity"),
            ("stage_id.is_won", "=", False),
        ]

    @api.model
    def _deal_in_flight(self, scripts, limit=None):
        """The open deals standing in a step of ``scripts`` (lost ones are archived)."""
        if not scripts:
            return self.browse()
        # the versions' deals whoever reads them: publishing concerns them all
        return (
            self.sudo()
            .search(self._deal_in_flight_domain(scripts), limit=limit, order="id")
            .with_env(self.env)
        )

    # ------------------------------------------------------------
    # MIGRATION
    # ------------------------------------------------------------

    @api.model
    def _deal_migrate_run(self, script, limit=None):
        """Migrate the in-flight deals of the older versions of ``script``'s
        process to it, batch by batch; at most ``limit`` deals.

        :return: (deals migrated, deals still to migrate)
        """
        if script.state != "published":
            # retired before its migration finished: the deals left stay
            script.sudo().deal_migration_plan = False
            return 0, 0
        targets = {old: new for old, new in script._deal_migration_targets().items() if new}
        older = script._deal_process_versions() - script
        domain = self._deal_in_flight_domain(older) + [("deal_step_id", "in", list(targets))]
        Lead = self.sudo()
        done = 0
        while limit is None or done < limit:
            size = MIGRATE_BATCH_SIZE if limit is None else min(MIGRATE_BATCH_SIZE, limit - done)
            leads = Lead.search(domain, limit=size, order="id")
            if not leads:
                break
            leads.with_env(self.env)._deal_migrate_batch(script, targets)
            done += len(leads)
        remaining = Lead.search_count(domain)
        if not remaining:
            # the engine's bookkeeping, whoever triggered it
            script.sudo().deal_migration_plan = False
        return done, remaining

    def _deal_migrate_batch(self, script, targets):
        """Move the deals ``self`` to ``script``: one stay with cause
        ``migrate`` each, the time spent in the step kept for its deadline,
        the ticked items carried over, one note per deal (the engine's entry
        note, titled with the migration).

        :param targets: {old step id: new step}
        """
        stays = (
            self.env["crm.deal.stage.log"]
            .sudo()
            .search_fetch(
                [("lead_id", "in", self.ids), ("date_out", "=", False)], ["lead_id", "date_in"]
            )
        )
        started = {stay.lead_id.id: stay.date_in for stay in stays}
        old_steps = {lead.id: lead.deal_step_id for lead in self}
        carried = self._deal_migrate_ticks_to_carry(old_steps, targets)
        self._deal_migrate_handoffs(old_steps, targets)
        titles = {}
        groups = defaultdict(list)
        for lead in self:
            old_step = old_steps[lead.id]
            new_step = targets[old_step.id]
            groups[(lead.deal_script_id, new_step)].append(lead.id)
            titles[lead.id] = self.env._(
                "The deal moved to version %(version)s of its process: step %(old)s is "
                "now %(new)s. The time already spent in the step counts for its deadline.",
                version=script.version,
                old=old_step.name,
                new=new_step.name,
            )
            if carried.get(lead.id):
                titles[lead.id] += " " + self.env._(
                    "Still ticked: %(items)s.",
                    items=", ".join(name for _check, _by, _date, name in carried[lead.id]),
                )
        migration = DealMigration(started, titles)
        for (old_script, step), lead_ids in groups.items():
            note = self.env._(
                "Migrated from version %(old)s to version %(new)s of the process.",
                old=old_script.version,
                new=script.version,
            )
            # one note per deal says it all: no tracking message besides it,
            # no email per activity of the new step
            leads = self.browse(lead_ids).with_context(
                mail_notrack=True,
                mail_activity_quick_update=True,
                mail_notify_force_send=False,
                deal_migration=migration,
            )
            leads._deal_move_context("migrate", note=note, skip_gate=True).write(
                {"deal_script_id": script.id, "stage_id": step.stage_id.id}
            )
        self._deal_migrate_carry_ticks(carried)

    def _deal_migrate_handoffs(self, old_steps, targets):
        """The hand-offs of the deals ``self`` at their old step become the new
        step's when it hands off to the same endpoint: entering it does not
        send the order again, and its gate reads their acknowledgement. The
        engine's bookkeeping (users do not write hand-offs)."""
        handoffs = (
            self.env["crm.deal.handoff"]
            .sudo()
            .search_fetch(
                [
                    ("lead_id", "in", self.ids),
                    ("step_id", "in", list({step.id for step in old_steps.values()})),
                ],
                ["lead_id", "step_id", "endpoint_id"],
            )
        )
        moved = defaultdict(list)
        for handoff in handoffs:
            old_step = old_steps[handoff.lead_id.id]
            new_step = targets[old_step.id].sudo()
            if handoff.step_id == old_step and new_step.handoff_endpoint_id == handoff.endpoint_id:
                moved[new_step.id].append(handoff.id)
        for step_id, ids in moved.items():
            handoffs.browse(ids).write({"step_id": step_id})
        handoffs.flush_recordset(["step_id"])

    def _deal_migrate_ticks_to_carry(self, old_steps, targets):
        """{lead id: [(script check id, ticked by, ticked on, name)]}: the items
        ticked on the old step that the new step has too (same name, in the
        language of the deal's list)."""
        ticked = (
            self.env["crm.deal.check"]
            .sudo()
            .search_fetch(
                [
                    ("lead_id", "in", self.ids),
                    ("step_id", "in", list({step.id for step in old_steps.values()})),
                    ("done", "=", True),
                ],
                ["lead_id", "step_id", "name", "done_by_id", "done_date"],
            )
        )
        new_checks = {}  # (new step, lang): {name: script check id}
        carried = defaultdict(list)
        for check in ticked:
            lead = check.lead_id
            old_step = old_steps[lead.id]
            if check.step_id != old_step:
                continue
            new_step = targets[old_step.id]
            lang = lead.user_id.lang or self.env.lang
            if (new_step, lang) not in new_checks:
                new_checks[new_step, lang] = {
                    item.name: item.id for item in new_step.check_ids.with_context(lang=lang)
                }
            check_id = new_checks[new_step, lang].get(check.name)
            if check_id:
                carried[lead.id].append(
                    (check_id, check.done_by_id.id or None, check.done_date, check.name)
                )
        return carried

    def _deal_migrate_carry_ticks(self, carried):
        """Tick the new step's items as ``_deal_migrate_ticks_to_carry`` found
        them, by whom and when they were ticked: the engine's bookkeeping, in
        one statement, no "ticked" note (the migration note says it)."""
        rows = [
            SQL("(%s, %s, %s::int, %s::timestamp)", lead_id, check_id, user_id, date)
            for lead_id, checks in carried.items()
            for check_id, user_id, date, _name in checks
        ]
        if not rows:
            return
        DealCheck = self.env["crm.deal.check"]
        DealCheck.flush_model()
        self.env.cr.execute(
            SQL(
                """
                UPDATE crm_deal_check item
                   SET done = TRUE, done_by_id = carried.user_id, done_date = carried.date
                  FROM (VALUES %s) AS carried(lead_id, check_id, user_id, date)
                 WHERE item.lead_id = carried.lead_id AND item.check_id = carried.check_id
                   AND NOT item.done
                """,
                SQL(", ").join(rows),
            )
        )
        DealCheck.invalidate_model(["done", "done_by_id", "done_date"])

    @api.model
    def _cron_deal_migrate(self, batch_size=MIGRATE_BATCH_SIZE):
        """Finish the migrations that publishing left to do, batch by batch,
        each committed with its progress (resumable: a crash loses at most
        the batch in progress, found again by the next run)."""
        IrCron = self.env["ir.cron"]
        scripts = (
            self.env["crm.deal.script"]
            .sudo()
            .with_context(active_test=False)
            .search([("deal_migration_plan", "!=", False)])
        )
        for script in scripts:
            while True:
                done, remaining = self._deal_migrate_run(script, limit=batch_size)
                time_left = IrCron._commit_progress(done, remaining=remaining)
                if not done or not remaining or time_left <= 0:
                    break

    def _deal_migration_gate_failures(self, old_step, new_step):
        """The deals ``self`` (in ``old_step``) that would not meet the exit
        requirements of ``new_step`` once migrated (the dry run): its fields
        and required conditions, its required items not ticked on the old
        step under the same name, and its hand-off unless acknowledged at the
        old step to the same endpoint (they are carried over)."""
        # the requirements of a step not entered yet: read as the gate does
        issues = self._deal_requirement_issues(dict.fromkeys(self.ids, new_step))
        endpoint = new_step.sudo().handoff_endpoint_id
        handed_off = set(
            self.env["crm.deal.handoff"]
            .sudo()
            .search(
                [
                    ("lead_id", "in", self.ids),
                    ("step_id", "=", old_step.id),
                    ("endpoint_id", "=", endpoint.id),
                    ("state", "=", "acknowledged"),
                ]
            )
            .lead_id.ids
            if endpoint
            else ()
        )
        ticked = {
            (check.lead_id.id, check.name)
            for check in self.env["crm.deal.check"]
            .sudo()
            .search(
                [("lead_id", "in", self.ids), ("step_id", "=", old_step.id), ("done", "=", True)]
            )
        }
        failing = self.browse()
        for lead in self:
            for issue in issues.get(lead.id, ()):
                if issue["kind"] == "activity" or (
                    issue["kind"] == "handoff" and lead.id in handed_off
                ):
                    continue
                if issue["kind"] == "check":
                    name = self.env["crm.deal.script.check"].browse(issue["check_id"]).name
                    if (lead.id, name) in ticked:
                        continue
                failing |= lead
                break
        return failing
