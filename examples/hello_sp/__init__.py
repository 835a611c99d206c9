"""hello_sp: the smallest complete service provider on authnet."""
