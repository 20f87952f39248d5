import { onWillUnmount } from "@odoo/owl";
import { browser } from "@web/core/browser/browser";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { useDebounced } from "@web/core/utils/timing";
import { KanbanController } from "@web/views/kanban/kanban_controller";
import { KanbanRenderer } from "@web/views/kanban/kanban_renderer";
import { kanbanView } from "@web/views/kanban/kanban_view";
import { ListController } from "@web/views/list/list_controller";
import { listView } from "@web/views/list/list_view";

// sent by crm.lead._deal_board_notify when deals change (any user)
export const BOARD_NOTIFICATION = "deal_stages/board_changed";
const RELOAD_DELAY = 1000;
// safety net if the bus is down: reload a visible board every minute
const POLL_INTERVAL = 60000;

/**
 * Keeps a deal control view live: reloads it (with its current filters and
 * groups) when any deal changes, as announced on the bus, and every minute.
 * Skipped while the user edits a record, so their work is never lost.
 */
export const DealControlLiveMixin = (Controller) =>
    class extends Controller {
        setup() {
            super.setup(...arguments);
            const busService = useService("bus_service");
            this.dealControlReload = useDebounced(() => this.dealControlRefresh(), RELOAD_DELAY);
            const onBoardChanged = () => this.dealControlReload();
            busService.subscribe(BOARD_NOTIFICATION, onBoardChanged);
            if (!busService.isActive) {
                busService.start();
            }
            const interval = browser.setInterval(() => {
                if (!document.hidden) {
                    this.dealControlReload();
                }
            }, POLL_INTERVAL);
            onWillUnmount(() => {
                busService.unsubscribe(BOARD_NOTIFICATION, onBoardChanged);
                browser.clearInterval(interval);
            });
        }

        async dealControlRefresh() {
            const root = this.model.root;
            if (root.editedRecord || root.records?.some((record) => record.dirty)) {
                return;
            }
            await this.model.load();
        }
    };

export class DealControlKanbanController extends DealControlLiveMixin(KanbanController) {}
export class DealControlListController extends DealControlLiveMixin(ListController) {}

/**
 * Grouped by step, a board without any deal has no column at all, and Odoo's
 * kanban then shows a blank page (it expects columns to be created): show
 * the action's help instead ("None of your deals is at risk").
 */
export class DealControlKanbanRenderer extends KanbanRenderer {
    get showNoContentHelper() {
        const { model, isGrouped, groups } = this.props.list;
        if (isGrouped && !model.useSampleModel && groups.length === 0) {
            return true;
        }
        return super.showNoContentHelper;
    }
}

registry.category("views").add("deal_control_kanban", {
    ...kanbanView,
    Controller: DealControlKanbanController,
    Renderer: DealControlKanbanRenderer,
});
registry.category("views").add("deal_control_list", {
    ...listView,
    Controller: DealControlListController,
});
