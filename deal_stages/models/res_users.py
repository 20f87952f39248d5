from collections import defaultdict

import pytz

from odoo import Command, api, fields, models

DIGEST_HOUR_PARAM = "deal_stages.digest_hour"
DIGEST_DEFAULT_HOUR = 8.0


class ResUsers(models.Model):
    """The daily deal digest: one email per person with what needs doing."""

    _inherit = "res.users"

    deal_digest_enabled = fields.Boolean(
        string="Daily Deal Digest",
        default=True,
        help="Receive each morning an email with your overdue and due-today deal "
        "activities and your deals at risk (and your team's, for team leaders).",
    )
    deal_digest_last_date = fields.Date(
        string="Last Deal Digest",
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="Technical: the (local) day of the last digest, so one is sent per day.",
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + ["deal_digest_enabled"]

    @property
    def SELF_WRITEABLE_FIELDS(self):
        return super().SELF_WRITEABLE_FIELDS + ["deal_digest_enabled"]

    # ------------------------------------------------------------
    # DIGEST
    # ------------------------------------------------------------

    @api.model
    def _cron_deal_digest(self):
        """Send the digest to the users whose local send time has come today.

        Runs every hour: each user gets it once per local day, at or after
        the hour set in the settings, in their own timezone. Emails go
        through the mail queue.
        """
        send_hour = self._deal_digest_hour()
        now = pytz.utc.localize(fields.Datetime.now())
        salesman_group = self.env.ref("sales_team.group_sale_salesman")
        # the digest is the system's: it reads the deals for each recipient
        users = self.sudo().search(
            [
                ("share", "=", False),
                ("deal_digest_enabled", "=", True),
                ("all_group_ids", "in", salesman_group.ids),
            ]
        )
        today_by_user = {}
        for user in users:
            local = now.astimezone(pytz.timezone(user.tz or "UTC"))
            today = local.date()
            if local.hour + local.minute / 60 < send_hour:
                continue
            if user.deal_digest_last_date and user.deal_digest_last_date >= today:
                continue
            today_by_user[user.id] = today
        if not today_by_user:
            return
        due = users.browse(today_by_user)
        due._deal_digest_send(today_by_user)
        by_day = defaultdict(list)
        for user_id, today in today_by_user.items():
            by_day[today].append(user_id)
        for today, user_ids in by_day.items():
            users.browse(user_ids).deal_digest_last_date = today

    @api.model
    def _deal_digest_hour(self):
        value = self.env["ir.config_parameter"].sudo().get_param(DIGEST_HOUR_PARAM)
        try:
            return float(value) if value else DIGEST_DEFAULT_HOUR
        except ValueError:
            return DIGEST_DEFAULT_HOUR

    def _deal_digest_send(self, today_by_user):
        """Queue one email per user of ``self`` with anything to report."""
        contents = self._deal_digest_contents(today_by_user)
        vals_list = []
        for user in self:
            content = contents[user.id]
            if not content["count"]:
                continue
            vals_list.append(user._deal_digest_mail_values(content))
        return self.env["mail.mail"].sudo().create(vals_list)

    def _deal_digest_contents(self, today_by_user):
        """{user id: digest content}: their own part and their teams' part.

        A handful of queries for all users: activities and at-risk deals
        are read in batch, then split per user.
        """
        teams, activities, deal_by_id, at_risk = self._deal_digest_data(max(today_by_user.values()))
        contents = {}
        for user in self:
            contents[user.id] = self._deal_digest_content(
                user, today_by_user[user.id], teams, activities, deal_by_id, at_risk
            )
        return contents

    def _deal_digest_data(self, last_today):
        """(teams led, due activities of deals, {deal id: deal}, deals at risk)
        of the users ``self``, read in batch up to ``last_today``."""
        Lead = self.env["crm.lead"].sudo()
        teams = self.env["crm.team"].sudo().search([("user_id", "in", self.ids)])
        activities = (
            self.env["mail.activity"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "crm.lead"),
                    ("user_id", "in", self.ids),
                    ("date_deadline", "<=", last_today),
                ]
            )
        )
        if teams:
            team_leads_with_due = Lead.search(
                [
                    ("team_id", "in", teams.ids),
                    ("deal_script_id", "!=", False),
                    ("activity_ids.date_deadline", "<=", last_today),
                ]
            )
            activities |= team_leads_with_due.activity_ids.filtered(
                lambda act: act.date_deadline <= last_today
            )
        # deal activities: those on deals (opportunities running a script)
        deals = Lead.search(
            [("id", "in", list(set(activities.mapped("res_id")))), ("deal_script_id", "!=", False)]
        )
        deal_by_id = {deal.id: deal for deal in deals}
        activities = activities.filtered(lambda act: act.res_id in deal_by_id).sorted(
            lambda act: (act.date_deadline, act.id)
        )
        at_risk = Lead.search(
            [
                ("deal_sla_state", "in", ["warning", "breached"]),
                "|",
                ("user_id", "in", self.ids),
                ("team_id", "in", teams.ids),
            ],
            order="deal_sla_deadline, id",
        )
        return teams, activities, deal_by_id, at_risk

    @api.model
    def _deal_digest_content(self, user, today, teams, activities, deal_by_id, at_risk):
        """The digest content of ``user``: their own part and their teams' part."""
        allowed = user.company_ids

        def visible(lead, allowed=allowed):
            return not lead.company_id or lead.company_id in allowed

        own_acts = activities.filtered(
            lambda act, user=user: act.user_id == user and visible(deal_by_id[act.res_id])
        )
        own_risk = at_risk.filtered(lambda lead, user=user: lead.user_id == user and visible(lead))
        content = {
            "user": user,
            "today": today,
            "own": self._deal_digest_section(own_acts, own_risk, deal_by_id, today),
            "teams": [],
        }
        count = content["own"]["count"]
        for team in teams.filtered(lambda team, user=user: team.user_id == user):
            team_acts = activities.filtered(
                lambda act, team=team, user=user: (
                    deal_by_id[act.res_id].team_id == team
                    and act.user_id != user
                    and visible(deal_by_id[act.res_id])
                )
            )
            team_risk = at_risk.filtered(
                lambda lead, team=team, user=user: (
                    lead.team_id == team and lead.user_id != user and visible(lead)
                )
            )
            section = self._deal_digest_section(team_acts, team_risk, deal_by_id, today)
            if section["count"]:
                section["team"] = team
                content["teams"].append(section)
                count += section["count"]
        content["count"] = count
        return content

    @api.model
    def _deal_digest_section(self, activities, at_risk, deal_by_id, today):
        overdue = activities.filtered(lambda act: act.date_deadline < today)
        due_today = activities.filtered(lambda act: act.date_deadline == today)
        return {
            "overdue": [(act, deal_by_id[act.res_id]) for act in overdue],
            "today": [(act, deal_by_id[act.res_id]) for act in due_today],
            "at_risk": at_risk,
            "count": len(overdue) + len(due_today) + len(at_risk),
        }

    def _deal_digest_mail_values(self, content):
        self.ensure_one()
        user = self.with_context(lang=self.lang or self.env.lang, tz=self.tz)
        env = user.env
        own = content["own"]
        overdue = len(own["overdue"]) + sum(len(s["overdue"]) for s in content["teams"])
        due_today = len(own["today"]) + sum(len(s["today"]) for s in content["teams"])
        at_risk = len(own["at_risk"]) + sum(len(s["at_risk"]) for s in content["teams"])
        base_url = self.get_base_url()
        body = env["ir.qweb"]._render(
            "deal_stages.deal_digest_mail",
            {
                **content,
                "base_url": base_url,
                "deal_url": lambda lead: f"{base_url}/mail/view?model=crm.lead&res_id={lead.id}",
                "format_deadline": lambda lead: (
                    fields.Datetime.context_timestamp(user, lead.deal_sla_deadline).strftime(
                        "%Y-%m-%d %H:%M"
                    )
                    if lead.deal_sla_deadline
                    else ""
                ),
                "format_date": lambda date: fields.Date.to_string(date),
                "sla_label": dict(
                    env["crm.lead"]._fields["deal_sla_state"]._description_selection(env)
                ),
            },
        )
        return {
            "subject": env._(
                "Your deals on %(date)s: %(overdue)s overdue, %(today)s due today, "
                "%(risk)s at risk",
                date=fields.Date.to_string(content["today"]),
                overdue=overdue,
                today=due_today,
                risk=at_risk,
            ),
            "body_html": body,
            "email_from": (
                self.company_id.partner_id.email_formatted
                or self.env.ref("base.partner_root").email_formatted
            ),
            "recipient_ids": [Command.link(self.partner_id.id)],
            "auto_delete": True,
        }
