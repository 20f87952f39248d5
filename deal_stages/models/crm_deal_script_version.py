import json

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..tools import ensure_one

SCRIPT_STATES = [
    ("draft", "Draft"),
    ("published", "Published"),
    ("retired", "Retired"),
]
# a marker only this code can put in a context (an RPC context is JSON): the
# version fields are written by the methods below, never by a caller
VERSION_WRITE = object()
VERSION_FIELDS = frozenset(
    ("state", "version", "previous_version_id", "process_id", "deal_migration_plan")
)
# what stays editable on a published or retired version: texts and who uses it;
# the parts' lists too, as every command on them creates, writes or deletes
# parts through their own guard (a step renamed in the script's form)
COSMETIC_SCRIPT_FIELDS = frozenset(("name", "note", "sequence", "active", "team_ids", "step_ids"))
COSMETIC_STEP_FIELDS = frozenset(
    ("name", "auto_advance_label", "check_ids", "activity_template_ids")
)
COSMETIC_CHECK_FIELDS = frozenset(("name",))
COSMETIC_ACTIVITY_FIELDS = frozenset(("summary", "note"))
# in-flight deals migrated in the request that publishes; the rest by the cron
MIGRATE_INLINE_LIMIT = 1000
# the longest step deadline or escalation delay, in hours (ten years)
SLA_MAX_HOURS = 87_600


def check_fixed(records, operation, vals_list=(), cosmetic=frozenset()):
    """Refuse to create, change or delete parts (steps, checklist items,
    activity templates) of published or retired versions.

    :param records: the parts (empty before a create; after it, the parts
        created: the parent the caller's defaults gave them counts too)
    :param vals_list: the values written or created
    :param cosmetic: the fields that stay editable (texts)
    """
    changed = set().union(*vals_list) - cosmetic if vals_list else set()
    if operation == "write" and not changed:
        return
    scripts = records.script_id
    if operation == "create":
        # default_* context keys fill the parent left out of the values
        context = records.env.context
        defaults = {
            name: context[f"default_{name}"]
            for name in ("script_id", "step_id")
            if name in records._fields
            and not records._fields[name].related
            and isinstance(context.get(f"default_{name}"), int)
            and not isinstance(context[f"default_{name}"], bool)
        }
        vals_list = [{**defaults, **vals} for vals in vals_list]
    for vals in vals_list:
        if vals.get("script_id"):
            scripts |= scripts.browse(vals["script_id"])
        if vals.get("step_id"):
            scripts |= records.env["crm.deal.script.step"].browse(vals["step_id"]).script_id
    scripts._deal_check_fixed(
        changed if operation == "write" else None, records=records, operation=operation
    )


class CrmDealScriptVersionMixin(models.AbstractModel):
    """Versions of a deal process (mixed into ``crm.deal.script``).

    A script is one version of a process: a draft is edited freely and drives
    no deal; publishing it makes it the teams' script for new deals and
    retires the previous version, whose deals stay on it to the end unless
    they are migrated. A published or retired version is fixed: its rules
    change only through a new version. The superuser (upgrades, the bridges'
    install hooks) may still correct one.
    """

    _name = "crm.deal.script.version.mixin"
    _description = "Deal Script Versions"

    version = fields.Integer(default=1, required=True, readonly=True, copy=False)
    state = fields.Selection(
        SCRIPT_STATES,
        default="published",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
        help="Draft: being prepared, drives no deal. Published: new deals of its "
        "teams follow it. Retired: replaced by a newer version; its deals finish on it.",
    )
    previous_version_id = fields.Many2one(
        "crm.deal.script",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
    )
    process_id = fields.Many2one(
        "crm.deal.script",
        compute="_compute_process_id",
        store=True,
        recursive=True,
        index=True,
        help="The first version of the process: every version of a process shares it.",
    )
    deal_migration_plan = fields.Text(
        readonly=True,
        copy=False,
        help="Technical: the in-flight deals of older versions still to migrate "
        "to this version ({'step_map': {old key: new key}}); empty when done.",
    )

    @api.depends("previous_version_id.process_id")
    def _compute_process_id(self):
        for script in self:
            script.process_id = script.previous_version_id.process_id or script

    # ------------------------------------------------------------
    # GUARD: published means fixed
    # ------------------------------------------------------------

    def _deal_version_internal(self):
        return self.env.context.get("deal_version_write") is VERSION_WRITE

    def _deal_check_fixed(self, changed=None, records=None, operation="write"):
        """Refuse a change of behaviour of a published or retired version.

        :param changed: names of the fields changed (for the message only)
        :param records: the records changed (steps, items...): a user without
            the right to change them at all gets the access error first
        :param operation: what is done to ``records``
        """
        if self.env.su or self._deal_version_internal():
            return
        fixed = self.filtered(lambda s: not s.is_template and s.state != "draft")
        if fixed:
            (self if records is None else records).check_access(operation)
            raise UserError(
                self.env._(
                    "The script %(script)s (version %(version)s) is %(state)s: its steps "
                    "and rules are fixed, so the deals already on it keep the rules they "
                    'started with. Click "New Version" to change them in a draft, then '
                    "publish it.%(fields)s",
                    script=fixed[0].display_name,
                    version=fixed[0].version,
                    state=dict(fixed[0]._fields["state"]._description_selection(self.env))[
                        fixed[0].state
                    ],
                    fields=(" (%s)" % ", ".join(sorted(changed))) if changed else "",
                )
            )

    @api.model_create_multi
    def create(self, vals_list):
        # created as drafts, so that the steps given with them may be created,
        # then published unless a draft was asked for (existing integrations
        # create scripts that run at once)
        if not (self.env.su or self._deal_version_internal()) and any(
            key.startswith("default_") and key[8:] in VERSION_FIELDS - {"state"}
            for key in self.env.context
        ):
            # the caller's default_* keys would fill them below: a script made
            # a version of another process, or given a migration plan (the
            # state is always set below: a default_state only says draft)
            raise UserError(self.env._('A new version is made with the "New Version" button.'))
        publish = []
        for vals in vals_list:
            state = vals.get("state", "published")
            if state not in ("draft", "published"):
                raise UserError(self.env._("A new script is a draft or published."))
            if not (self.env.su or self._deal_version_internal()) and (
                vals.get("previous_version_id")
                or vals.get("version", 1) != 1
                or vals.get("process_id")
                or vals.get("deal_migration_plan")
            ):
                raise UserError(self.env._('A new version is made with the "New Version" button.'))
            publish.append(state == "published")
            vals["state"] = "draft"
        scripts = super().create(vals_list)
        published = scripts.browse(
            [script.id for script, flag in zip(scripts, publish, strict=True) if flag]
        )
        if published:
            published.with_context(deal_version_write=VERSION_WRITE).write({"state": "published"})
        return scripts

    def write(self, vals):
        if not (self.env.su or self._deal_version_internal()):
            if VERSION_FIELDS.intersection(vals):
                raise UserError(
                    self.env._(
                        "The version and state of a script change only with the "
                        '"New Version" and "Publish" buttons.'
                    )
                )
            thread_fields = set(self.env["mail.thread"]._fields)
            changed = set(vals) - COSMETIC_SCRIPT_FIELDS - thread_fields
            if changed:
                self._deal_check_fixed(changed)
        if "state" in vals or "team_ids" in vals:
            self.env.registry.clear_cache()  # _script_id_by_team
            result = super().write(vals)
            self.env.registry.clear_cache()
            return result
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_any_deal(self):
        # lost (archived) deals too: their history names the version
        counts = dict(
            self.env["crm.lead"]
            .with_context(active_test=False)
            ._read_group([("deal_script_id", "in", self.ids)], ["deal_script_id"], ["__count"])
        )
        used = self.filtered(lambda s: counts.get(s))
        if used:
            raise UserError(
                self.env._(
                    "The script %(script)s is followed by %(count)s deal(s): "
                    "archive it instead of deleting it.",
                    script=used[0].display_name,
                    count=counts[used[0]],
                )
            )

    @api.constrains("active", "state")
    def _check_archive_retired(self):
        retired = self.filtered(lambda s: not s.active and s.state == "retired")
        in_flight = self.env["crm.lead"]._deal_in_flight(retired)
        if in_flight:
            raise ValidationError(
                self.env._(
                    "The retired version %(version)s of %(script)s still has %(count)s "
                    "deal(s) in progress: it can be archived once they are finished or "
                    "migrated.",
                    version=in_flight[0].deal_script_id.version,
                    script=in_flight[0].deal_script_id.display_name,
                    count=len(in_flight),
                )
            )

    # ------------------------------------------------------------
    # VERSIONS
    # ------------------------------------------------------------

    def _deal_publish_created(self):
        """Publish drafts this module's own code just configured (templates)."""
        self.with_context(deal_version_write=VERSION_WRITE).write({"state": "published"})

    def _deal_check_manager(self):
        if not (self.env.su or self.env.user.has_group("sales_team.group_sale_manager")):
            raise AccessError(
                self.env._("Only sales administrators can manage the versions of a deal process.")
            )

    def _deal_process_versions(self):
        """Every version of the processes of ``self`` (archived ones included)."""
        return self.with_context(active_test=False).search(
            [("process_id", "in", self.process_id.ids)]
        )

    def action_new_version(self):
        """Copy the published version into a draft (next version number, same
        step keys, stages and teams). Returns the draft's id."""
        self._deal_check_manager()
        ensure_one(self)
        if self.is_template or self.state != "published":
            raise UserError(
                self.env._(
                    "A new version is made from the published version of a process; "
                    "%(script)s is not.",
                    script=self.display_name,
                )
            )
        versions = self._deal_process_versions()
        draft = versions.filtered(lambda s: s.state == "draft")
        if draft:
            raise UserError(
                self.env._(
                    "The process already has a draft: version %(version)s of %(script)s. "
                    "Publish or delete it before starting another one.",
                    version=draft[0].version,
                    script=draft[0].display_name,
                )
            )
        return self._deal_copy_as_draft(max(versions.mapped("version")) + 1).id

    def copy(self, default=None):
        """Duplicate scripts (the form's "Duplicate"): each copy is a new
        *draft*, like an imported process file: version 1, no previous
        version, the same teams, steps (keys, stages, checklists, activities,
        server actions, return steps) and settings. It drives no deal until
        it is published; published, it replaces the script its teams follow
        and becomes that process's next version (``action_publish``). A new
        version of the same process is made with ``action_new_version``.
        Templates are not versions: they are copied as before.
        """
        templates = self.filtered("is_template")
        scripts = self - templates
        copies = (
            super(CrmDealScriptVersionMixin, templates).copy(default) if templates else templates
        )
        if not scripts:
            return copies
        default = {"state": "draft", **(default or {})}
        copy_steps = "step_ids" not in default
        if copy_steps:
            default["step_ids"] = []
            # the steps are copied below as the superuser: the caller's own right
            # (the steps' own copy would lose their return paths)
            self.env["crm.deal.script.step"].check_access("create")
        duplicates = super(CrmDealScriptVersionMixin, scripts).copy(default)
        if copy_steps:
            for script, duplicate in zip(scripts, duplicates, strict=True):
                script._deal_copy_steps(duplicate)
        return copies | duplicates

    def _deal_copy_as_draft(self, version):
        self.ensure_one()
        # the steps' technical links (fields, server actions) are not readable
        # by sales administrators, whose right was checked by the caller
        draft = (
            self.sudo()
            .with_context(deal_version_write=VERSION_WRITE)
            .copy(
                {
                    "name": self.name,
                    "state": "draft",
                    "version": version,
                    "previous_version_id": self.id,
                    "team_ids": self.team_ids.ids,
                    "step_ids": [],
                }
            )
        )
        self._deal_copy_steps(draft)
        return draft.with_env(self.env)

    def _deal_copy_steps(self, draft):
        """Copy the steps of ``self`` into the empty ``draft``, with their
        return paths and the script's return steps."""
        self.ensure_one()
        step_map = {}
        # as the superuser: the steps' technical links (required fields,
        # server actions) are not readable by sales administrators, and the
        # copies keep the very records an administrator attached
        for step in self.step_ids.sorted(lambda s: (s.sequence, s.id)):
            step_map[step] = step.sudo().copy(
                {
                    "script_id": draft.id,
                    "stage_id": step.stage_id.id,
                    "step_key": step.step_key,
                    "template_step_id": step.template_step_id.id,
                }
            )
        for step, copy in step_map.items():
            if step.back_step_ids:
                copy.back_step_ids = [step_map[back].id for back in step.back_step_ids]
        draft.write(
            {
                f"return_step_{kind}_id": step_map[self[f"return_step_{kind}_id"]].id
                for kind in ("increase", "decrease", "correction", "other")
                if self[f"return_step_{kind}_id"] in step_map
            }
        )
        return step_map

    def _deal_publish_problems(self):
        """What prevents publishing the draft ``self``: a list of sentences."""
        self.ensure_one()
        problems = []
        steps = self.step_ids
        if not steps:
            problems.append(self.env._("The process has no step."))
        for step in steps:
            try:
                step._check_stage_in_script_teams()
                step._check_back_steps()
                step._check_auto_advance_domain()
            except ValidationError as error:
                problems.append(str(error.args[0]))
        try:
            self._check_return_steps()
        except ValidationError as error:
            problems.append(str(error.args[0]))
        return problems

    def _deal_published_of_process(self):
        """The published version the draft ``self`` replaces (may be empty).

        A draft without a previous version (imported) replaces the script its
        teams follow: it becomes that process's next version.
        """
        self.ensure_one()
        if self.previous_version_id:
            return self._deal_process_versions().filtered(lambda s: s.state == "published")
        return self.search(
            [
                ("state", "=", "published"),
                ("is_template", "=", False),
                ("team_ids", "in", self.team_ids.ids),
            ]
        )

    def action_publish(self, in_flight="keep", step_map=None):
        """Publish the draft: it becomes the teams' script for new deals and
        the previous version is retired.

        :param in_flight: ``keep``: the deals on older versions finish on
            them; ``migrate``: they move to this version, step by step key
        :param step_map: {old step key: new step key} overriding the keys
        """
        self._deal_check_manager()
        ensure_one(self)
        if self.is_template or self.state != "draft":
            raise UserError(
                self.env._(
                    "Only a draft can be published: %(script)s is not one.",
                    script=self.display_name,
                )
            )
        if in_flight not in ("keep", "migrate"):
            raise UserError(
                self.env._("In-flight deals are either kept on their version or migrated.")
            )
        if step_map is not None and not (
            isinstance(step_map, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in step_map.items())
        ):
            raise UserError(
                self.env._("The step map pairs the old step keys with the new ones, as text.")
            )
        if step_map and in_flight != "migrate":
            raise UserError(
                self.env._(
                    "A step map tells where migrated deals go: it applies only when in-flight "
                    "deals are migrated. With “keep” they stay on their version: publish "
                    "without a step map, or migrate them."
                )
            )
        problems = self._deal_publish_problems()
        previous = self._deal_published_of_process()
        if len(previous.process_id) > 1:
            problems.append(
                self.env._(
                    "The teams of this draft follow different processes (%(scripts)s): "
                    "publish it for the teams of one process.",
                    scripts=", ".join(previous.mapped("display_name")),
                )
            )
        migrating = self.env["crm.lead"]
        if in_flight == "migrate" and not problems:
            older = self._deal_process_versions() | previous._deal_process_versions()
            migrating = self.env["crm.lead"]._deal_in_flight(older - self)
            unknown = sorted(set(step_map or {}) - set((older - self).step_ids.mapped("step_key")))
            if unknown:
                problems.append(
                    self.env._(
                        "The step map names steps the previous versions do not have: %(keys)s",
                        keys=", ".join(unknown),
                    )
                )
            problems += self._deal_migration_problems(migrating, step_map or {})
        if problems:
            raise UserError(
                self.env._(
                    "The draft %(script)s cannot be published:\n%(problems)s",
                    script=self.display_name,
                    problems="\n".join(f"- {problem}" for problem in problems),
                )
            )
        self._deal_publish(previous, migrating, step_map or {})
        return True

    def _deal_publish(self, previous, migrating, step_map):
        internal = self.sudo().with_context(deal_version_write=VERSION_WRITE)
        values = {"state": "published"}
        if previous and not self.previous_version_id:
            values["previous_version_id"] = previous.id
        # the versions of the process this one joins: its number follows
        # theirs (a draft made from version 1 may be published after another
        # draft, or an imported file, became version 2)
        others = (self._deal_process_versions() | previous._deal_process_versions()) - self
        latest = max(others.mapped("version"), default=0)
        if self.version <= latest:
            values["version"] = latest + 1
        if migrating:
            values["deal_migration_plan"] = json.dumps({"step_map": step_map}, sort_keys=True)
        # a migration still running to a version retired now stops: its deals
        # not moved yet stay on their version (or migrate to this one below)
        internal.browse(others.filtered("deal_migration_plan").ids).write(
            {"deal_migration_plan": False}
        )
        internal.browse(previous.ids).write({"state": "retired"})
        internal.write(values)
        body = self.env._(
            "Version %(version)s published: new deals follow it.", version=self.version
        )
        teams_left = self._deal_teams_left(previous)
        if teams_left:
            body += " " + self.env._(
                "The sales teams %(teams)s followed the previous version and follow no "
                "process now: their new deals get no script.",
                teams=", ".join(teams_left.mapped("display_name")),
            )
        self.message_post(body=body)
        if migrating:
            _done, remaining = self.env["crm.lead"]._deal_migrate_run(
                self, limit=MIGRATE_INLINE_LIMIT
            )
            if remaining:
                # the rest in batches, by the cron (started now, not in an hour)
                self.env.ref("deal_stages.ir_cron_deal_migrate").sudo()._trigger()

    def _deal_teams_left(self, previous):
        """The teams the published versions ``previous`` serve and the draft
        ``self`` does not: published, it leaves them without a process."""
        # the draft's reader may not read every team's name: the teams are
        # named to a sales administrator who manages the process
        return previous.sudo().team_ids - self.sudo().team_ids

    def _deal_migration_problems(self, leads, step_map):
        """The in-flight deals whose step has no target in the draft ``self``."""
        keys = set(self.step_ids.mapped("step_key"))
        unknown = sorted(set(step_map.values()) - keys)
        problems = (
            [
                self.env._(
                    "The step map names steps the new version does not have: %(keys)s",
                    keys=", ".join(unknown),
                )
            ]
            if unknown
            else []
        )
        # a deal moves to a version of its own team's process only
        foreign = leads.filtered(lambda lead: lead.team_id and lead.team_id not in self.team_ids)
        for team, deals in foreign.grouped("team_id").items():
            problems.append(
                self.env._(
                    "The new version is not for the sales team %(team)s, whose %(count)s "
                    "deal(s) would move to it: %(deals)s. Add the team to the draft, or keep "
                    "the deals on their version.",
                    team=team.display_name,
                    count=len(deals),
                    deals=", ".join(deals[:10].mapped("display_name"))
                    + (", ..." if len(deals) > 10 else ""),
                )
            )
        stranded = leads.filtered(
            lambda lead: (
                step_map.get(lead.deal_step_id.step_key, lead.deal_step_id.step_key) not in keys
            )
        )
        for step, deals in stranded.grouped("deal_step_id").items():
            problems.append(
                self.env._(
                    "No step of the new version for the step %(step)s (key %(key)s) of "
                    "version %(version)s, where %(count)s deal(s) stand: %(deals)s. Map it "
                    "to a step of the new version.",
                    step=step.name,
                    key=step.step_key,
                    version=step.script_id.version,
                    count=len(deals),
                    deals=", ".join(deals[:10].mapped("display_name"))
                    + (", ..." if len(deals) > 10 else ""),
                )
            )
        return problems

    def _deal_migration_targets(self):
        """{old step id: new step} for the pending migration to ``self``."""
        self.ensure_one()
        plan = json.loads(self.deal_migration_plan or "{}")
        step_map = plan.get("step_map") or {}
        new_by_key = {step.step_key: step for step in self.step_ids}
        older = self._deal_process_versions() - self
        return {
            step.id: new_by_key.get(step_map.get(step.step_key, step.step_key))
            for step in older.step_ids
        }
