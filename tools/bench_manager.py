"""``make bench`` row ``manager`` (issue 18): one write by a sales manager
moving 200 / 1,000 deals of a salesperson, four ways (see ``bench_common``);
the salesperson must be told of the new activities once."""

from bench_common import BULK_SIZES, VARIANTS, BenchBase
from odoo_harness import say

# the mover is not the assignee (a sales manager moving the team's deals):
# the floor tells the salesperson once, as the engine must
NOTIFY_LIST_LIMIT = 200


class ManagerBench(BenchBase):
    def move_as_manager(self, env, variant, ids):
        """A manager's move of the salesperson's deals; the floor creates the
        activities in one create without Odoo's email per activity, tells the
        salesperson once (the same list the engine sends) and sends the
        customer emails in one batch."""
        leads = env["crm.lead"].browse(ids)
        leads.write({"stage_id": self.stage_b})
        if variant != "floor":
            return
        from markupsafe import Markup

        activities = (
            env["mail.activity"]
            .with_context(mail_activity_quick_update=True)
            .create(self.floor_activities(env, leads))
        )
        base_url = env["mail.activity"].get_base_url()
        for user, user_activities in activities.grouped("user_id").items():
            listed = user_activities[:NOTIFY_LIST_LIMIT]
            body = Markup("<ul>%s</ul>") % Markup().join(
                Markup(
                    '<li><a href="%s/mail/view?model=crm.lead&amp;res_id=%s">%s</a>: %s, %s</li>'
                )
                % (base_url, act.res_id, act.res_name, act.summary, act.date_deadline)
                for act in listed
            )
            env["mail.thread"].sudo().with_context(lang=user.lang).message_notify(
                partner_ids=user.partner_id.ids,
                subject=f"New activities for you ({len(user_activities)})",
                body=body,
            )
        env["mail.template"].browse(self.template).send_mail_batch(leads.ids)

    def told_salesperson(self, env, since_id):
        """Notifications the salesperson got in messages after ``since_id``."""
        partner = env["res.users"].browse(self.mover).partner_id
        return env["mail.message"].search_count(
            [
                ("id", ">", since_id),
                ("message_type", "=", "user_notification"),
                ("partner_ids", "in", partner.ids),
            ]
        )

    def bench_manager(self):
        """Issue 18: one write by a sales manager moving 200 / 1,000 deals of
        a salesperson (3 activities each to the salesperson, 1 customer
        email). Target: <= 1.2x the floor in time, < 1 query per deal above
        it, the salesperson told once."""
        for size in BULK_SIZES:
            say(f"manager's moves of {size} deals ...")
            deals = {v: self.make_deals(self.team[v], size) for v in VARIANTS}
            result, told = {}, {}
            with self.env(uid=self.manager) as env:
                for variant in VARIANTS:
                    since = env["mail.message"].sudo().search([], order="id desc", limit=1).id
                    result[variant] = self.measured(
                        env, lambda v=variant, i=deals[variant]: self.move_as_manager(env, v, i)
                    )
                    told[variant] = self.told_salesperson(env(su=True), since)
            extra = self.per_deal_above(result, "floor", size)
            ratio = result["addon"].seconds / result["floor"].seconds
            self.add_variants(
                f"one write moving {size:,} deals by a manager",
                result,
                f"<= 1.2x floor ({ratio:.2f}x), < 1 q/deal above floor ({extra:.2f}), "
                f"salesperson told once ({told['addon']})",
                ratio <= 1.2 and extra < 1 and told["addon"] == 1,
            )
            self.add(
                "  salesperson's notifications",
                {v: f"{n:,}" for v, n in told.items()},
                "",
                None,
            )
            self.check_work_done("manager", deals["addon"])
