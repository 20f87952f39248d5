"""The scripts' structure as plain data, cached across requests."""


class DealStepConfig:
    """One step of a script, as plain data (see ``DealConfig``)."""

    __slots__ = (
        "auto_advance_required", "back_step_ids", "cancel_activities_on_exit", "check_ids",
        "field_names", "handoff_endpoint_id", "handoff_required", "id", "index",
        "is_feedback_step", "mail_mode", "mail_template_id", "require_activities_done",
        "required_check_ids", "script_id", "server_action_ids", "sla_hours", "stage_id",
    )  # fmt: skip

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)


class DealConfig:
    """The structure of the deal scripts as plain data, cached across requests.

    The hot paths (the gate of every move, the entry automation, the kanban
    cards) read scripts and steps here rather than in the database, where a
    request would read them again each time; texts (names, messages) are read
    from the records, when a message needs them.

    - ``scripts``: {script id: (strict order, step ids in order)}
    - ``steps``: {step id: ``DealStepConfig``}
    - ``step_by_key``: {(script id, stage id): step id}
    - ``stage_ids``: the stages of the steps
    """

    __slots__ = ("scripts", "stage_ids", "step_by_key", "steps")

    def __init__(self, scripts, steps):
        self.scripts = scripts
        self.steps = steps
        self.step_by_key = {(step.script_id, step.stage_id): step.id for step in steps.values()}
        self.stage_ids = frozenset(step.stage_id for step in steps.values())

    def script_steps(self, script_id):
        """Step ids of the script, in order (empty if unknown)."""
        return self.scripts.get(script_id, (False, ()))[1]
