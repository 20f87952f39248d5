from . import test_deal_sale
