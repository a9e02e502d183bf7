"""mmengine glue for PTQAT: quantizing model builder, PTQATHook (registered in mmdet3d)."""
