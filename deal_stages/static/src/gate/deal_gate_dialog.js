import { Component, useState } from "@odoo/owl";
import { Dialog } from "@web/core/dialog/dialog";
import { standardErrorDialogProps } from "@web/core/errors/error_dialogs";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { FormViewDialog } from "@web/views/view_dialogs/form_view_dialog";

/**
 * The gate payload of a refused move, if ``error`` is one (see DealGateError).
 */
export function dealGatePayload(error) {
    const context = error && error.data && error.data.context;
    if (context && context.exception_class === "deal_stages.DealGateError") {
        return context.deal_gate;
    }
    return null;
}

/**
 * What blocks a stage move, with a way to complete each item: tick the
 * checklist, mark the step's activities done, open the deal to fill fields.
 * Opened for any refused move (form statusbar, buttons); from the kanban it
 * also offers to try the move again.
 */
export class DealGateDialog extends Component {
    static template = "deal_stages.DealGateDialog";
    static components = { Dialog };
    static props = {
        ...standardErrorDialogProps,
        payload: { type: Object, optional: true },
        onRetry: { type: Function, optional: true },
        onChanged: { type: Function, optional: true },
    };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.dialogService = useService("dialog");
        const payload = this.props.payload || dealGatePayload(this.props);
        this.state = useState({ payload, busy: false });
        this.dealIds = payload.deals.map((deal) => deal.id);
        this.changed = false;
    }

    get allMet() {
        return !this.state.payload.deals.length;
    }

    async refresh() {
        this.changed = true;
        this.state.payload = await this.orm.call("crm.lead", "get_deal_gate_info", [
            this.dealIds,
            this.state.payload.stage_id,
        ]);
        this.props.onChanged?.();
    }

    async onTick(deal, issue, ev) {
        this.state.busy = true;
        try {
            await this.orm.call("crm.lead", "action_deal_tick_check", [
                [deal.id],
                issue.check_id,
                ev.target.checked,
            ]);
            await this.refresh();
        } finally {
            this.state.busy = false;
        }
    }

    async onActivityDone(issue) {
        this.state.busy = true;
        try {
            await this.orm.call("mail.activity", "action_feedback", [[issue.activity_id]]);
            await this.refresh();
        } finally {
            this.state.busy = false;
        }
    }

    onOpenDeal(deal) {
        this.dialogService.add(FormViewDialog, {
            resModel: "crm.lead",
            resId: deal.id,
            onRecordSaved: () => this.refresh(),
        }, { onClose: () => this.refresh() });
    }

    async onRetry() {
        this.props.close();
        await this.props.onRetry();
    }

    async onForce() {
        const action = await this.orm.call("crm.lead", "action_deal_open_force_stage", [
            this.dealIds,
        ]);
        action.context = { ...action.context, default_stage_id: this.state.payload.stage_id };
        this.props.close();
        // the wizard ends with a soft reload of the view underneath
        await this.action.doAction(action);
    }

    onClose() {
        this.props.close();
    }
}

registry.category("error_dialogs").add("deal_stages.DealGateError", DealGateDialog);
