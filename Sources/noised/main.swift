print("noised")
