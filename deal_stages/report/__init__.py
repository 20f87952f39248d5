from . import crm_deal_report_mixin
from . import crm_deal_report_version
from . import crm_deal_step_stay_report
from . import crm_deal_step_time_report
from . import crm_deal_step_funnel_report
from . import crm_deal_loss_report
from . import crm_deal_rework_report
from . import crm_deal_activity_report
