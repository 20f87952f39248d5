from . import crm_deal_force_stage
from . import crm_deal_order_change_wizard
from . import crm_lead_lost
from . import crm_deal_script_publish
