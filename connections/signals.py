from django.dispatch import Signal

# After a connection is saved for the first time (servers of the same account are re-attached).
connection_created = Signal()  # connection
# Inside the removal transaction, before the row is deleted (syncs stop with a clear status).
connection_removed = Signal()  # connection, used ({verbose name plural: [objects]})
