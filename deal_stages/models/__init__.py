from . import base_automation
from . import crm_deal_script
from . import crm_deal_script_step
from . import crm_deal_script_activity
from . import crm_deal_stage_log
from . import crm_lead
from . import crm_team
from . import mail_activity
