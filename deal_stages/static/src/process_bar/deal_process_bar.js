import { Component, useState } from "@odoo/owl";
import { formatDuration } from "@web/core/l10n/dates";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { useRecordObserver } from "@web/model/relational_model/utils";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/**
 * The guided deal: the script's steps (done / current / upcoming, with the
 * time spent in each), the current step's checklist to tick in place, what
 * still blocks the next move and what entering the next step will do.
 */
export class DealProcessBar extends Component {
    static template = "deal_stages.DealProcessBar";
    static props = { ...standardFieldProps };

    setup() {
        this.orm = useService("orm");
        this.state = useState({ guide: null, busy: false });
        useRecordObserver((record) => {
            // a reloaded record brings a fresh guide (observed: read it here)
            if (record.data[this.props.name] !== this.shownGuide) {
                this.shownGuide = record.data[this.props.name];
                this.state.guide = null;
            }
        });
    }

    get currentGuide() {
        return this.state.guide || this.props.record.data[this.props.name];
    }

    get canTick() {
        // ticking is its own RPC: the (computed, read-only) field is not edited
        return this.currentGuide.can_write && !this.state.busy;
    }

    formatTime(hours) {
        if (!hours) {
            return "";
        }
        return formatDuration(hours * 3600, false);
    }

    stepTitle(step) {
        const time = this.formatTime(step.hours);
        return time ? _t("%(step)s: %(time)s in this step", { step: step.name, time }) : step.name;
    }

    activityDeadline(activity) {
        if (!activity.deadline_days) {
            return _t("due the day of entry");
        }
        return activity.working_days
            ? _t("due in %(days)s working days", { days: activity.deadline_days })
            : _t("due in %(days)s days", { days: activity.deadline_days });
    }

    // one sentence each, the quotes in it: a template's text cut around the
    // name left its closing quote untranslatable (Russian «…” mismatched)
    activityLine(activity) {
        return _t("Activity “%(summary)s” for %(user)s, %(deadline)s", {
            summary: activity.summary,
            user: activity.user,
            deadline: this.activityDeadline(activity),
        });
    }

    mailLine(mail) {
        return _t("Customer message “%(message)s” (%(mode)s)", {
            message: mail.name,
            mode: mail.mode,
        });
    }

    actionLine(action) {
        return _t("Runs “%(action)s”", { action });
    }

    async onTick(check, ev) {
        const record = this.props.record;
        this.state.busy = true;
        try {
            this.state.guide = await this.orm.call("crm.lead", "action_deal_tick_check", [
                [record.resId],
                check.check_id,
                ev.target.checked,
            ]);
        } finally {
            this.state.busy = false;
        }
        if (!record.dirty) {
            // refresh the rest of the form (checklist tab, chatter, kanban data)
            await record.load();
        }
    }
}

export const dealProcessBar = {
    component: DealProcessBar,
    supportedTypes: ["json"],
};

registry.category("fields").add("deal_process_bar", dealProcessBar);
