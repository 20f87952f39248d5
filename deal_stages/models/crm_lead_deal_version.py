from collections import defaultdict

from odoo import api, models
from odoo.exceptions import ValidationError

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
        self._deal_migrate_carry_ticks(old_steps)

    def _deal_migrate_carry_ticks(self, old_steps):
        """Tick on the new step the items ticked on the old one (same name)."""
        DealCheck = self.env["crm.deal.check"].sudo()
        checks = DealCheck.search(
            [
                ("lead_id", "in", self.ids),
                "|",
                ("step_id", "in", [step.id for step in old_steps.values()]),
                ("step_id", "in", self.deal_step_id.ids),
            ]
        )
        ticked = {
            (check.lead_id.id, check.name): check
            for check in checks
            if check.done and check.step_id == old_steps[check.lead_id.id]
        }
        groups = defaultdict(lambda: DealCheck.browse())
        for check in checks:
            old = ticked.get((check.lead_id.id, check.name))
            if old and not check.done and check.step_id == check.lead_id.deal_step_id:
                groups[(old.done_by_id.id, old.done_date)] |= check
        for (user_id, date), new_checks in groups.items():
            new_checks.write({"done": True, "done_by_id": user_id, "done_date": date})

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
        and required conditions, and its required items not ticked on the old
        step under the same name (they are carried over)."""
        # the requirements of a step not entered yet: read as the gate does
        issues = self._deal_requirement_issues(dict.fromkeys(self.ids, new_step))
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
                if issue["kind"] == "activity":
                    continue
                if issue["kind"] == "check":
                    name = self.env["crm.deal.script.check"].browse(issue["check_id"]).name
                    if (lead.id, name) in ticked:
                        continue
                failing |= lead
                break
        return failing
