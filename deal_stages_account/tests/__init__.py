from . import test_deal_invoicing
