
storageK
iter
w"
Checkpoint*
db"ckpt_%05d.minidb*
db_type"minidb*	
every
\
w"Save*
db"w.minidb*
db_type"minidb*

chunk_size *
blob_name_overrides:weightsKw2"Load*
db"w.minidb*
db_type"minidb*
source_blob_names:weights:exists"DBExists*
db_name"w.minidb*
db_type"minidb:iter:w