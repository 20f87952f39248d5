import { CrmKanbanDynamicGroupList } from "@crm/views/crm_kanban/crm_kanban_model";
import { patch } from "@web/core/utils/patch";
import { DealGateDialog, dealGatePayload } from "../gate/deal_gate_dialog";

/**
 * A drag refused by a deal's gate opens a dialog to complete what is missing
 * and try the same move again, instead of a bare error.
 */
patch(CrmKanbanDynamicGroupList.prototype, {
    async moveRecord(dataRecordId, dataGroupId, refId, targetGroupId) {
        try {
            return await super.moveRecord(...arguments);
        } catch (error) {
            const payload = dealGatePayload(error);
            if (!payload) {
                throw error;
            }
            const sourceGroup = this.groups.find((g) => g.id === dataGroupId);
            const record = sourceGroup?.list.records.find((r) => r.id === dataRecordId);
            this.model.dialog.add(DealGateDialog, {
                payload,
                onRetry: () => this.moveRecord(dataRecordId, dataGroupId, refId, targetGroupId),
                onChanged: () => record?.load(),
            });
        }
    },
});
