"""The engine's activities: one notification per assignee per transaction.

Odoo tells the assignee of every activity someone else creates with its own
message (``mail.activity.action_notify``): a manager moving 500 deals would
put 1,500 emails in one salesperson's inbox and pay for each. The engine
creates its activities with ``_deal_engine_create`` instead: one ``create``,
no message per activity, and each assignee other than the mover is told once,
just before the transaction commits, of all the activities it gave them, in
their language, in their inbox or by email as each chose.
"""

from contextlib import contextmanager

from markupsafe import Markup

from odoo import api, models
from odoo.tools.misc import clean_context, get_lang

# precommit data: {assignee user id: [activity ids]} queued in this transaction
DEAL_NOTIFY_KEY = "deal_stages.activity_notify"
# lines listed in one notification: beyond, a count (a list of 3,000 lines
# is read by nobody and weighs on every mail server)
DEAL_NOTIFY_LIST_LIMIT = 200


class DealEngineActivities:
    """Marks the activities the engine creates, the only ones linked to a
    script at birth (a Python object: a context sent over RPC cannot carry one)."""

    __slots__ = ()


DEAL_ENGINE_ACTIVITIES = DealEngineActivities()


class DealNotifyHold:
    """The activities queued while it runs (``deal_notify_held``), kept from
    the precommit hooks until it ends."""

    __slots__ = ("pending",)

    def __init__(self):
        # {assignee user id: [activity ids]}
        self.pending = {}


# {id of a cursor: its running hold}: a cursor is used by one thread, and
# its entry is removed when the hold ends (while the cursor is alive). Not
# ``cr.cache``: Odoo clears it with the record cache (a savepoint's rollback)
DEAL_NOTIFY_HOLDS = {}


@contextmanager
def deal_notify_held(env):
    """Keep the activities queued so far and those created inside from the
    savepoints opened inside: their assignees are told once, with the rest
    of the transaction's, when it commits.

    Entering or leaving a savepoint runs the transaction's precommit hooks:
    without a hold, a step's server action (run in a savepoint) between two
    batches of activities, or a cron batch done deal by deal in savepoints,
    would tell the same person once per part. Nested holds are one.
    """
    key = id(env.cr)
    if key in DEAL_NOTIFY_HOLDS:
        yield
        return
    hold = DEAL_NOTIFY_HOLDS[key] = DealNotifyHold()
    # what is already queued waits with the rest (its hook, left registered,
    # finds it again once released)
    hold.pending = env.cr.precommit.data.pop(DEAL_NOTIFY_KEY, None) or {}
    try:
        yield
    finally:
        del DEAL_NOTIFY_HOLDS[key]
        # activities rolled back since are dropped when told
        env["mail.activity"]._deal_notify_release(hold)


class MailActivityDealNotify(models.AbstractModel):
    """Mixed into ``mail.activity`` (``models/mail_activity.py``)."""

    _name = "mail.activity.deal.notify"
    _description = "Deal: Activities Told Once"

    @api.model
    def _deal_engine_create(self, vals_list):
        """Create the engine's activities in one batch, without Odoo's email
        per activity; their assignees are told once per transaction.

        :return: the activities, in the environment of ``self``
        """
        if not vals_list:
            return self.browse()
        activities = self.with_context(
            mail_activity_quick_update=True, deal_engine_activities=DEAL_ENGINE_ACTIVITIES
        ).create(vals_list)
        activities = activities.with_env(self.env)
        activities._deal_notify_later()
        return activities

    def _deal_notify_later(self):
        """Queue ``self`` for their assignees' notification, sent when the
        transaction commits (``_deal_notify_queued``). Who made them (the
        mover) is not told of their own."""
        queued = [
            (activity.user_id.id, activity.id)
            for activity in self
            if activity.user_id and activity.user_id.id != self.env.uid and activity.res_model
        ]
        if not queued:
            return
        hold = DEAL_NOTIFY_HOLDS.get(id(self.env.cr))
        pending = hold.pending if hold else self._deal_notify_pending()
        for user_id, activity_id in queued:
            pending.setdefault(user_id, []).append(activity_id)

    def _deal_notify_pending(self):
        """{user id: [activity ids]} told when the transaction commits."""
        precommit = self.env.cr.precommit
        pending = precommit.data.get(DEAL_NOTIFY_KEY)
        if pending is None:
            pending = precommit.data[DEAL_NOTIFY_KEY] = {}
            precommit.add(self.browse()._deal_notify_queued)
        return pending

    @api.model
    def _deal_notify_release(self, hold):
        """Queue what ``hold`` kept for the commit."""
        if not hold.pending:
            return
        pending = self._deal_notify_pending()
        for user_id, activity_ids in hold.pending.items():
            pending.setdefault(user_id, []).extend(activity_ids)
        hold.pending = {}

    def _deal_notify_queued(self):
        """Send the queued notifications now (precommit hook; the SLA cron
        calls it at the end of each batch, as it commits)."""
        pending = self.env.cr.precommit.data.pop(DEAL_NOTIFY_KEY, None)
        if pending:
            self._deal_notify_assignees(pending)

    @api.model
    def _deal_notify_assignees(self, activity_ids_by_user):
        """One message per assignee listing their activities.

        :param activity_ids_by_user: {user id: [activity ids]}
        """
        # the system tells people: the mover may not read the assignees nor
        # every activity (a team leader's), and must not need to
        Activity = self.sudo().with_context(**clean_context(self.env.context))
        ids = [act_id for act_ids in activity_ids_by_user.values() for act_id in act_ids]
        # done or cancelled in the same transaction (a deal that moved on at
        # once): no longer news
        alive = set(Activity.browse(ids).exists().filtered("active").ids)
        base_url = Activity.get_base_url()
        users = self.env["res.users"].sudo().browse(activity_ids_by_user)
        for user in users:
            activities = Activity.browse(
                [act_id for act_id in activity_ids_by_user[user.id] if act_id in alive]
            )
            if not activities or not user.partner_id or not user.active:
                # an archived user no longer reads the inbox: nothing is
                # emailed to a former employee
                continue
            lang = user.lang or get_lang(self.env).code
            activities = activities.with_context(lang=lang)
            subject, body = activities._deal_notify_message(base_url)
            activities.env["mail.thread"].message_notify(
                partner_ids=user.partner_id.ids,
                subject=subject,
                body=body,
            )

    def _deal_notify_message(self, base_url):
        """(subject, body) telling the assignee of ``self`` about them, in the
        context's language."""
        _ = self.env._
        date_format = get_lang(self.env).date_format
        listed = self[:DEAL_NOTIFY_LIST_LIMIT]
        if len(self) == 1:
            subject = _(
                "New activity for you: %(activity)s (%(record)s)",
                activity=self._deal_notify_label(),
                record=self.res_name,
            )
        else:
            subject = _("New activities for you (%(count)s)", count=len(self))
        lines = Markup().join(
            Markup("<li>%s</li>")
            % _(
                "%(record)s: %(activity)s, due %(date)s",
                record=Markup('<a href="%s/mail/view?model=%s&amp;res_id=%s">%s</a>')
                % (base_url, activity.res_model, activity.res_id, activity.res_name or ""),
                activity=activity._deal_notify_label(),
                date=activity.date_deadline.strftime(date_format),
            )
            for activity in listed
        )
        body = Markup("<p>%s</p><ul>%s</ul>") % (
            _("These deals gave you new activities:"),
            lines,
        )
        if len(self) > len(listed):
            body += Markup("<p>%s</p>") % _(
                "… and %(count)s more: see them in your activities.",
                count=len(self) - len(listed),
            )
        return subject, body

    def _deal_notify_label(self):
        self.ensure_one()
        return self.summary or self.activity_type_id.name or ""
