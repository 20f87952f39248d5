"""What the engine did and skipped for each deal, and the notes that say it."""

from markupsafe import Markup


class DealOutcome:
    """What the engine did and skipped for each deal, posted as one note."""

    def __init__(self):
        self.lines = {}

    def done(self, lead, text):
        self.lines.setdefault(lead.id, ([], []))[0].append(text)

    def skipped(self, lead, text):
        self.lines.setdefault(lead.id, ([], []))[1].append(text)

    def body(self, env, lead_id, title):
        """The note of one deal: ``title``, then what was done and skipped."""
        done, skipped = self.lines.get(lead_id, ([], []))
        body = Markup("<p>%s</p>") % title
        for label, lines in ((env._("Done:"), done), (env._("Skipped:"), skipped)):
            if lines:
                body += Markup("<p>%s</p><ul>%s</ul>") % (
                    label,
                    Markup().join(Markup("<li>%s</li>") % line for line in lines),
                )
        return body

    def post(self, leads, stays):
        """Post one internal note per deal that had anything done or skipped."""
        env = leads.env
        # the steps' names are cached: no read of the steps for the notes
        names = env["crm.deal.script"]._deal_step_names()
        step_by_lead = {log.lead_id.id: log.step_id for log in stays}
        title_by_lead = {
            lead.id: env._(
                "Step %(step)s entered.",
                step=names.get(step_by_lead[lead.id].id) or step_by_lead[lead.id].name,
            )
            for lead in leads
            if any(self.lines.get(lead.id, ()))
        }
        self.post_titled(leads.browse(title_by_lead), title_by_lead)

    def post_titled(self, leads, title_by_lead):
        """One internal note per deal of ``leads``: its title, then its lines."""
        env = leads.env
        bodies = {lead.id: self.body(env, lead.id, title_by_lead[lead.id]) for lead in leads}
        if bodies:
            leads.browse(bodies)._message_log_batch(bodies=bodies)

    def post_notes(self, leads):
        """Post the lines as one internal note per deal, outside a step entry."""
        bodies = {}
        for lead in leads:
            done, skipped = self.lines.get(lead.id, ([], []))
            lines = done + skipped
            if lines:
                bodies[lead.id] = Markup("<ul>%s</ul>") % Markup().join(
                    Markup("<li>%s</li>") % line for line in lines
                )
        if bodies:
            leads.browse(bodies)._message_log_batch(bodies=bodies)


class DealActivities:
    """What the deals' script activities are: open (lead id, template id)
    pairs and templates already applied (see ``_deal_cancel_left_activities``)."""

    __slots__ = ("applied", "open_pairs")

    def __init__(self):
        self.applied = set()
        self.open_pairs = set()


class SlaOutcome:
    """Adapter: ``_deal_schedule_activities`` reports into the deals' SLA notes."""

    def __init__(self, notes):
        self.notes = notes

    def done(self, lead, text):
        self.notes[lead.id].append(text)

    def skipped(self, lead, text):
        self.notes[lead.id].append(text)
