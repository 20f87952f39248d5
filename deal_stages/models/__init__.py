from . import crm_deal_script
