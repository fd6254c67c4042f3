"""The ground floor every part may use: where atwh keeps its files and the config file
(config), dates as the API writes them (dates), the bounded HTTP transport (transport), JSON
from outside (jsontext), lazy re-exports (lazy). It imports no other part of atwh but
`errors`."""
