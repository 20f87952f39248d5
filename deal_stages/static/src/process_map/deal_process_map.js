import { Component } from "@odoo/owl";
import { formatDuration } from "@web/core/l10n/dates";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/**
 * The process as a map: the steps in order, each with its gate (checklist,
 * fields, activities, required condition), its deadline and its
 * auto-advance condition, and the return paths drawn under them. Drawn from
 * the script's data (``process_map``), in the reader's language.
 */
export class DealProcessMap extends Component {
    static template = "deal_stages.DealProcessMap";
    static props = { ...standardFieldProps };

    get map() {
        return this.props.record.data[this.props.name] || { steps: [] };
    }

    get steps() {
        return this.map.steps || [];
    }

    get returns() {
        // one line per return path: from a step back to an earlier one
        const index = Object.fromEntries(this.steps.map((step, i) => [step.key, i]));
        const paths = [];
        this.steps.forEach((step, i) => {
            step.back.forEach((key, j) => {
                if (key in index) {
                    paths.push({
                        id: `${step.key}-${key}`,
                        from: i,
                        to: index[key],
                        label: _t("%(from)s ↩ %(to)s", { from: step.name, to: step.back_names[j] }),
                    });
                }
            });
        });
        return paths;
    }

    sla(step) {
        return step.sla_hours ? formatDuration(step.sla_hours * 3600, false) : "";
    }

    hasGate(step) {
        return (
            step.checks.some((check) => check.required) ||
            step.fields.length ||
            step.activities_done ||
            (step.condition && step.condition_required)
        );
    }

    get labels() {
        return {
            gate: _t("To leave"),
            sla: _t("Deadline"),
            auto: _t("Moves on by itself when"),
            required: _t("required"),
            activities: _t("Activities"),
            activitiesDone: _t("its activities done"),
            returns: _t("Return paths"),
            empty: _t("No step yet."),
            version: _t("Version"),
        };
    }
}

registry.category("fields").add("deal_process_map", {
    component: DealProcessMap,
    supportedTypes: ["json"],
});
