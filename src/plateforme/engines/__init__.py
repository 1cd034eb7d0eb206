"""Model engines: worker processes that run models, and the clients that talk to them."""
